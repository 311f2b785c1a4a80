"""Choose the subject among detected faces, and say when the choice is not clear-cut."""

from __future__ import annotations

from dataclasses import dataclass

from biometric.faces import Face

# A second face is a rival (``several_faces``: the service cannot tell who the claimant is) when
# its size, the square root of its box area, is at least this share of the chosen subject's.
# Measured with benchmarks/subject_composites.py on composites of real shared photos (30 pairs of
# East-Asian people from asian_celeb, vn_celeb_toy, kpop_idols and lfw_dev; BlazeFace + O-Net
# boxes), as the share of scenes whose second face reaches 0.6:
#   a second person pasted behind the claimant at 0.35 / 0.45 / 0.55 / 0.65 of the claimant's
#   face height: 0/17, 0/27, 1/29, 24/29 (measured ratio max 0.392 / 0.511 / 0.618 / 0.718);
#   two people side by side at 0.8-1.2x: 146 of 148 (measured min 0.555, p5 0.70-0.78);
#   fr_examples/multi_face (real photos of two people): every second face, 0.663-0.959.
# At a counter the claimant stands about 0.6 m from the camera; the next person in the queue,
# at least 0.5 m further back, shows at most 0.6 / 1.1 = 0.55 of the claimant's face size and
# is ignored, while someone beside the claimant (0.8-1.2x) still stops the decision. The old
# bound, an area ratio of 0.25 (size 0.5), flagged 26 of 29 scenes with the person at 0.55.
RIVAL_SIZE_RATIO = 0.6


@dataclass(frozen=True)
class SubjectPolicy:
    rival_size_ratio: float = RIVAL_SIZE_RATIO
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
        if f is not subject and f.area >= policy.rival_size_ratio**2 * subject.area
    )
    return SubjectChoice(subject, rivals)
