"""Choose the subject among detected faces, and say when the choice is not clear-cut."""

from __future__ import annotations

from dataclasses import dataclass

from biometric.faces import Face


@dataclass(frozen=True)
class SubjectPolicy:
    # A second face at least this large relative to the subject is a plausible second person
    # (someone at the counter behind the citizen); smaller ones are posters or passers-by.
    rival_area_ratio: float = 0.25
    min_score: float = 0.90


@dataclass(frozen=True)
class SubjectChoice:
    subject: Face | None
    rivals: tuple[Face, ...]  # other plausible faces


def choose_subject(
    faces: list[Face], width: int, height: int, policy: SubjectPolicy | None = None
) -> SubjectChoice:
    """The largest, most central confident face is the subject."""
    policy = policy or SubjectPolicy()
    confident = [f for f in faces if f.score >= policy.min_score]
    if not confident:
        return SubjectChoice(None, ())
    half_diag = ((width / 2) ** 2 + (height / 2) ** 2) ** 0.5

    def weight(face: Face) -> float:
        cx, cy = face.center
        off = ((cx - width / 2) ** 2 + (cy - height / 2) ** 2) ** 0.5 / half_diag
        return face.area * (1.0 - 0.5 * off)

    subject = max(confident, key=weight)
    rivals = tuple(
        f
        for f in confident
        if f is not subject and f.area >= policy.rival_area_ratio * subject.area
    )
    return SubjectChoice(subject, rivals)
