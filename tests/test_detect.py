"""Detection on real photos of the shared sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from biometric.decide import Decision
from biometric.decode import read_image
from biometric.evaluation import EmbeddedSet
from biometric.pipeline import LIVE, Pipeline
from biometric.verification import Verifier

SINGLE_FACE_EDGE = [
    "obama-240p.jpg",
    "obama-480p.jpg",
    "obama-720p.jpg",
    "obama-1080p.jpg",
    "obama_small.jpg",
    "32bit_rgba.png",
]


def _single_face_photos(fr_dir: Path) -> list[Path]:
    photos = sorted((fr_dir / "identities").glob("*/*"))
    return photos + [fr_dir / "edge" / n for n in SINGLE_FACE_EDGE]


def test_face_found_in_every_single_face_colour_photo(pipeline: Pipeline, fr_dir: Path) -> None:
    missed = []
    for path in _single_face_photos(fr_dir):
        analysis = pipeline.analyse(read_image(path).rgb, LIVE)
        if analysis.subject is None:
            missed.append(path.name)
    assert not missed, f"no face found in {missed}"


def test_landmarks_lie_inside_the_box(pipeline: Pipeline, fr_dir: Path) -> None:
    face = pipeline.detect(read_image(fr_dir / "identities/obama/obama.jpg").rgb)[0]
    x1, y1, x2, y2 = face.box
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face.landmarks)
    left_eye, right_eye = face.landmarks[0], face.landmarks[1]
    assert left_eye[0] < right_eye[0], "left eye (image left) must come first"


def test_detection_rate_on_tight_grey_crops(embedded_sets: list[EmbeddedSet]) -> None:
    yale = next(s for s in embedded_sets if s.name == "yaleb_moderate")
    rate = 1.0 - yale.failure_to_acquire
    print(f"\nyaleb_moderate detection rate {rate:.4f} over {len(yale.images)} images")
    assert rate >= 0.95


@pytest.mark.parametrize("name", ["two_people.jpg", "obama_and_biden.jpg", "kit_with_rose.jpg"])
def test_multi_face_photos_report_every_face_and_ask_for_retake(
    pipeline: Pipeline, fr_dir: Path, name: str
) -> None:
    rgb = read_image(fr_dir / "multi_face" / name).rgb
    faces = pipeline.detect(rgb)
    assert len([f for f in faces if f.score >= 0.9]) >= 2
    chip = read_image(fr_dir / "identities/obama/obama.jpg").rgb
    result = Verifier(pipeline).verify_faces(rgb, chip)
    assert result.decision is Decision.RETAKE
    assert "several_faces" in {r.code for r in result.reasons}


def test_no_face_gives_retake_not_an_exception(pipeline: Pipeline, fr_dir: Path) -> None:
    # A real photo cropped to a region without a face (the top-left corner of the background).
    rgb = read_image(fr_dir / "identities/biden/biden.jpg").rgb[:150, :150].copy()
    chip = read_image(fr_dir / "identities/biden/biden2.jpg").rgb
    result = Verifier(pipeline).verify_faces(rgb, chip)
    assert result.decision is Decision.RETAKE
    assert [r.code for r in result.reasons] == ["no_face"]
    assert result.score is None
