"""Capture conditions: told from real photos, and each pair decided at its condition's threshold."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from biometric.conditions import Condition, image_condition, pair_condition, pair_conditions
from biometric.decide import Decision, OperatingPoint, decide
from biometric.decode import read_image
from biometric.evaluation import EmbeddedSet, pair_scores


def test_grey_and_colour_photos_are_told_apart(data_dir: Path) -> None:
    """Yale B PGMs and the black-and-white LFW photos (stored as RGB JPEG) are grey; every
    colour set's photos, including the near-sepia LFW print closest to the bound, are colour."""
    grey = sorted((data_dir / "yaleb_moderate").glob("*/*.pgm"))[::60]
    grey += [data_dir / "lfw_dev" / "Babe_Ruth" / "Babe_Ruth_0001.jpg"]
    colour = [data_dir / "lfw_dev" / "Bing_Crosby" / "Bing_Crosby_0001.jpg"]
    colour += sorted((data_dir / "asian_celeb").rglob("*.jpg"))[::10]
    colour += sorted((data_dir / "kpop_idols").rglob("*.jpg"))[::25]
    assert len(grey) >= 5 and len(colour) >= 15
    assert [image_condition(read_image(p).rgb) for p in grey] == [Condition.GREY] * len(grey)
    assert [image_condition(read_image(p).rgb) for p in colour] == [Condition.COLOUR] * len(colour)


def test_a_pair_takes_the_harder_condition() -> None:
    assert pair_condition("colour", "colour") is Condition.COLOUR
    assert pair_condition("colour", "grey") is Condition.GREY
    assert pair_condition("grey", "colour") is Condition.GREY
    per_image = np.asarray(["colour", "grey", "colour"])
    got = pair_conditions(per_image, np.array([0, 0, 1]), np.array([2, 1, 2]))
    assert got.tolist() == ["colour", "grey", "grey"]


def test_decision_uses_the_pairs_condition_threshold() -> None:
    point = OperatingPoint(threshold=0.6, fmr=1e-3, by_condition={"colour": 0.4, "grey": 0.6})
    assert decide(0.5, point, [], "colour") is Decision.MATCH
    assert decide(0.5, point, [], "grey") is Decision.NO_MATCH
    assert decide(0.5, point, [], "webcam") is Decision.NO_MATCH  # unknown: pooled threshold
    assert decide(0.5, point, [], None) is Decision.NO_MATCH


def test_pair_scores_carry_each_pairs_condition() -> None:
    """Synthetic unit vectors (labelled as such): the bookkeeping, not an accuracy claim."""
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(4, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    s = EmbeddedSet(
        "synthetic",
        [Path(f"{i}.png") for i in range(4)],
        np.asarray(["a", "a", "b", "b"]),
        emb,
        conditions=np.asarray(["colour", "grey", "colour", "colour"]),
    )
    scores = pair_scores([s])
    assert len(scores.genuine) == 2 and len(scores.impostor) == 4
    assert sorted(scores.genuine_conditions.tolist()) == ["colour", "grey"]
    assert sorted(scores.impostor_conditions.tolist()) == ["colour", "colour", "grey", "grey"]
    colour = scores.where("colour")
    assert len(colour.genuine) == 1 and len(colour.impostor) == 2
    assert colour.impostor_folds is not None and len(colour.impostor_folds) == 2
