"""The claimant, not the queue: composites of real shared photos (SYNTHETIC scenes, real faces;
benchmarks/subject_composites.py measures the bound on 30 pairs). A smaller second person behind
the claimant is ignored; two people side by side stop the decision with ``several_faces``."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.subject_composites import behind_scene, biggest, side_scene
from biometric.decode import read_image
from biometric.pipeline import LIVE, Pipeline

# (claimant, other person): pairs whose second face the detector finds in both scenes.
PAIRS = (
    ("asian_celeb/s1", "asian_celeb/s2"),
    ("kpop_idols/BTS_JIN", "vn_celeb_toy/label0002"),
    ("kpop_idols/BTS_RM", "kpop_idols/BTS_SUGA"),
)
# The next person in a queue, about 1 m behind a claimant 0.6 m from the camera: 0.6 / 1.6.
BEHIND = 0.4


def _first(data_dir: Path, person: str):
    folder = data_dir / person
    path = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[0]
    return read_image(path).rgb


@pytest.fixture(scope="module")
def people(pipeline: Pipeline, data_dir: Path):
    out = []
    for a, b in PAIRS:
        pa, pb = _first(data_dir, a), _first(data_dir, b)
        fa, fb = biggest(pipeline, pa), biggest(pipeline, pb)
        assert fa is not None and fb is not None, (a, b)
        out.append((pa, fa.box, pb, fb.box))
    return out


def _codes(pipeline: Pipeline, scene) -> list[str]:
    return [r.code for r in pipeline.analyse(scene, LIVE).reasons]


def test_smaller_person_behind_is_not_a_rival(pipeline: Pipeline, people) -> None:
    for a, abox, b, bbox in people:
        scene, near = behind_scene(a, abox, b, bbox, BEHIND)
        faces = pipeline.detect(scene)
        # The person behind is found, and still the claimant is decided on.
        assert any(abs(f.center[0] - near[0]) < 40 for f in faces)
        assert "several_faces" not in _codes(pipeline, scene)


def test_two_people_side_by_side_are_several_faces(pipeline: Pipeline, people) -> None:
    for a, abox, b, bbox in people:
        scene, _ = side_scene(a, abox, b, bbox, 1.0)
        assert "several_faces" in _codes(pipeline, scene)


def test_real_photos_of_two_people_are_several_faces(pipeline: Pipeline, fr_dir: Path) -> None:
    for name in ("obama_and_biden.jpg", "two_people.jpg"):
        rgb = read_image(fr_dir / "multi_face" / name).rgb
        assert "several_faces" in _codes(pipeline, rgb), name
