"""Capture conditions: told from real photos, and each pair decided at its condition's threshold."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from biometric.conditions import Condition, image_condition, pair_condition, pair_conditions
from biometric.decide import Decision, OperatingPoint
from biometric.decode import read_image
from biometric.evaluation import EmbeddedSet, pair_scores
from biometric.verification import FaceEvidence, Policies, Verifier, decide
from biometric.views import VerifyView


def test_grey_colour_and_tight_photos_are_told_apart(pipeline, data_dir: Path) -> None:
    """Yale B PGMs and the black-and-white LFW photos (stored as RGB JPEG) have no colour; every
    colour set's photos, including the near-sepia LFW print closest to the bound, have. With
    its face found, a Yale B crop (168x192, framed like a counter webcam crop) is tight; an
    LFW portrait or a web photo is not."""
    grey = sorted((data_dir / "yaleb_moderate").glob("*/*.pgm"))[::60]
    grey_full = [data_dir / "lfw_dev" / "Babe_Ruth" / "Babe_Ruth_0001.jpg"]
    colour = [data_dir / "lfw_dev" / "Bing_Crosby" / "Bing_Crosby_0001.jpg"]
    colour += sorted((data_dir / "asian_celeb").rglob("*.jpg"))[::10]
    colour += sorted((data_dir / "kpop_idols").rglob("*.jpg"))[::25]
    assert len(grey) >= 5 and len(colour) >= 15

    def conditions(paths: list[Path], with_face: bool) -> list[Condition]:
        out = []
        for p in paths:
            rgb = read_image(p).rgb
            face = pipeline.analyse(rgb, "live").subject if with_face else None
            out.append(image_condition(rgb, None if face is None else face.landmarks))
        return out

    assert conditions(grey + grey_full, False) == [Condition.GREY] * (len(grey) + 1)
    assert conditions(colour, False) == [Condition.COLOUR] * len(colour)
    assert conditions(grey, True) == [Condition.TIGHT] * len(grey)
    assert conditions(grey_full, True) == [Condition.GREY]
    assert conditions(colour, True) == [Condition.COLOUR] * len(colour)


def test_a_pair_takes_the_harder_condition() -> None:
    assert pair_condition("colour", "colour") is Condition.COLOUR
    assert pair_condition("colour", "grey") is Condition.GREY
    assert pair_condition("grey", "colour") is Condition.GREY
    assert pair_condition("tight", "colour") is Condition.TIGHT
    assert pair_condition("grey", "tight") is Condition.TIGHT
    per_image = np.asarray(["colour", "grey", "colour", "tight"])
    got = pair_conditions(per_image, np.array([0, 0, 1, 3]), np.array([2, 1, 2, 0]))
    assert got.tolist() == ["colour", "grey", "grey", "tight"]


def test_decision_uses_the_pairs_condition_threshold() -> None:
    point = OperatingPoint(threshold=0.6, fmr=1e-3, by_condition={"colour": 0.4, "grey": 0.6})

    def decision(condition: str | None) -> Decision:
        face = FaceEvidence(0.5, point, condition=condition)
        return decide(face, None, None, Policies()).decision

    assert decision("colour") is Decision.MATCH
    assert decision("grey") is Decision.NO_MATCH
    assert decision("webcam") is Decision.NO_MATCH  # unknown: the pooled threshold
    assert decision(None) is Decision.NO_MATCH


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


def test_verify_decides_at_the_pairs_condition_threshold(pipeline, data_dir: Path) -> None:
    """A Yale B pair (tight grey crops) is decided at the tight threshold, a colour LFW pair at
    the colour one (both from the manifest's shipped operating point)."""
    point = pipeline.operating_point
    verifier = Verifier(pipeline)
    yale = sorted(p for p in (data_dir / "yaleb_moderate").iterdir() if p.is_dir())
    grey = sorted(p for p in yale[0].iterdir() if p.suffix == ".pgm")[:2]
    lfw = sorted((data_dir / "lfw_dev" / "Abdullah_Gul").iterdir())[:2]
    for pair, condition in ((grey, "tight"), (lfw, "colour")):
        result = verifier.verify_faces(read_image(pair[0]).rgb, read_image(pair[1]).rgb)
        assert result.condition == condition
        assert result.threshold == point.threshold_for(condition)
        assert result.display_score == pipeline.score_scale_for(condition).display(result.score)
        assert VerifyView.model_validate(result).condition == condition


def test_manifest_thresholds_per_condition_are_what_the_data_gives(
    pipeline, acquired_sets
) -> None:
    """The shipped option's condition thresholds at FMR 1e-3 are refitted from the shared
    photos (the same rule, same data): the grey condition rests on Yale B, the colour one on
    the colour sets, and grey impostor scores need a different threshold than colour ones."""
    from biometric.calibrate import fit_rule, option_scores

    manifest = pipeline.manifest
    calibrated = manifest.threshold_for(pipeline.option, 1e-3)
    records = {c.condition: c for c in calibrated.conditions}
    assert records["tight"].fitted and records["tight"].datasets == ["yaleb_moderate"]
    assert records["grey"].fitted and records["grey"].datasets == ["lfw_dev"]
    assert records["colour"].fitted
    assert {"lfw_dev", "asian_celeb", "kpop_idols"} <= set(records["colour"].datasets)
    # Harder conditions never below easier ones; on Yale B the tight crops need more.
    assert records["colour"].threshold <= records["grey"].threshold < records["tight"].threshold
    scores = option_scores(acquired_sets, pipeline.option, pipeline.fusion)
    refit = fit_rule(scores, 1e-3)
    assert refit is not None
    for condition, record in records.items():
        assert abs(refit.threshold_for(condition) - record.threshold) <= 1e-5, condition
    for c in records.values():  # in sample, each set of a condition holds the claim there
        for r in c.per_set:
            if r.fmr_ratio is not None and r.name in c.datasets:
                assert r.fmr_ratio <= 1.0 + 1e-9, (c.condition, r)
