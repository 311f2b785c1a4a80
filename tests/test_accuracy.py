"""The shipped decision on real photos of every shared set (ISO/IEC 19795-1 terms): acquisition,
the calibrated threshold per set, LFW's official View-1 pairs, and the `evaluate` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from biometric import config
from biometric.assessment import source_figures
from biometric.calibrate import EMBEDDERS, OPTIONS, option_scores
from biometric.decode import read_image
from biometric.evaluation import AcquiredSet, acquire_sets, lfw_pairs_set
from biometric.pipeline import CHIP, LIVE, Pipeline
from biometric.verification import Verifier

# Failure to find a whole face (issue targets): colour sets 1 %, grey tight crops 3 %.
FTA_BOUND = {
    "lfw_dev": 0.01,
    "lfw_dev_asian": 0.01,
    "asian_celeb": 0.01,
    "kpop_idols": 0.01,
    "vn_celeb_toy": 0.01,
    "fr_examples": 0.01,
    "yaleb_moderate": 0.03,
}
# The measured FMR at the shipped threshold may exceed the claim by this factor on any set that
# can show it (at least 1/claim impostor pairs) before the claim is considered broken.
MAX_FMR_RATIO = 3.0
# The price of holding the claim on kpop_idols' look-alike impostors (stage make-up, same
# groups): the shipped default (sface+mobilefacenet, 2026-12-02) rejects 28.1 % of kpop_idols'
# genuine pairs, 9.8 % of asian_celeb's and 5.1 % of lfw_dev's at its colour threshold.
MAX_FNMR = 0.3


@pytest.mark.parametrize("name", sorted(FTA_BOUND))
def test_failure_to_acquire_per_set(acquired_sets: list[AcquiredSet], name: str) -> None:
    acq = next(a for a in acquired_sets if a.ident.name == name)
    print(
        f"\n{name}: FTA {acq.failure_to_acquire:.4f} of {len(acq.ident.images)}; retakes "
        f"live {acq.retake_rate(LIVE):.4f}, chip {acq.retake_rate(CHIP):.4f}"
    )
    assert acq.failure_to_acquire <= FTA_BOUND[name]


def test_shipped_threshold_holds_its_fmr_on_every_set(
    pipeline: Pipeline, acquired_sets: list[AcquiredSet]
) -> None:
    point = pipeline.operating_point
    scores = option_scores(acquired_sets, pipeline.option, pipeline.fusion)
    checked = []
    for acq in acquired_sets:
        fig = source_figures(acq, scores[acq.ident.name], point, CHIP)
        print(
            f"\n{fig['name']}: FMR {fig['fmr_at_threshold']} on {fig['impostor']} impostor pairs "
            f"(ratio {fig['fmr_ratio']}), FNMR {fig['fnmr_at_threshold']}"
        )
        if fig["fmr_ratio"] is not None:
            checked.append(fig["name"])
            assert fig["fmr_ratio"] <= MAX_FMR_RATIO, fig
            assert fig["fnmr_at_threshold"] <= MAX_FNMR, fig
    assert {"lfw_dev", "yaleb_moderate", "asian_celeb", "kpop_idols"} <= set(checked)


@pytest.fixture(scope="module")
def view1(pipeline: Pipeline, data_dir) -> AcquiredSet:
    """LFW's View-1 pairs, embedded as the accuracy benchmark does (same on-disk cache)."""
    pairs = lfw_pairs_set(data_dir / "lfw_dev")
    assert pairs is not None, "lfw_dev/pairsDevTest.txt missing"
    cache = config.cache_dir() / "embeddings"
    return acquire_sets([pairs], list(EMBEDDERS), pipeline, cache_dir=cache)[0]


def test_lfw_view1_accuracy(pipeline: Pipeline, view1: AcquiredSet) -> None:
    assert view1.ident.pairs is not None and len(view1.ident.pairs) == 1000
    point = pipeline.operating_point
    scores = option_scores([view1], pipeline.option, pipeline.fusion)[view1.ident.name]
    fig = source_figures(view1, scores, point, CHIP)
    print(
        f"\nView-1: accuracy {fig['accuracy_at_threshold']:.4f} at the shipped threshold, "
        f"{fig['best_accuracy']:.4f} at the best; {fig['pairs_not_acquired']} pairs not acquired"
    )
    assert fig["pairs_not_acquired"] <= 10
    assert fig["best_accuracy"] >= 0.99
    # At the shipped threshold (FMR 1e-3 held on the hardest set) lfw_dev loses ~8 % of its
    # genuine pairs; the best-threshold figure is the one comparable with published LFW results.
    assert fig["accuracy_at_threshold"] >= 0.95


def test_lfw_style_portraits_match_and_do_not_match(pipeline: Pipeline, data_dir) -> None:
    """Two colour 250x250 portraits (the face ~40 % of the width) as live and chip: a decision,
    not `retake` (the old chip face-size rule refused 97.6 % of them)."""
    lfw = data_dir / "lfw_dev"
    a, b = sorted((lfw / "Abdullah_Gul").iterdir())[:2]
    other = sorted((lfw / "Aaron_Guiel").iterdir())[0]
    same = Verifier(pipeline).verify_faces(read_image(a).rgb, read_image(b).rgb)
    diff = Verifier(pipeline).verify_faces(read_image(a).rgb, read_image(other).rgb)
    assert same.decision.value == "match", same.reasons
    assert diff.decision.value == "no_match", diff.reasons


def test_genuine_colour_pairs_match(pipeline: Pipeline, fr_dir) -> None:
    ids = fr_dir / "identities"
    decisions = []
    for person in sorted(p for p in ids.iterdir() if p.is_dir()):
        photos = sorted(person.iterdir())
        for other in photos[1:]:
            result = Verifier(pipeline).verify_faces(read_image(photos[0]).rgb,
                                                     read_image(other).rgb)
            decisions.append(result.decision.value)
    print(f"\nfr_examples genuine pairs: {decisions}")
    assert decisions.count("retake") == 0
    assert decisions.count("match") >= len(decisions) - 2


def test_impostor_pairs_do_not_match(pipeline: Pipeline, fr_dir) -> None:
    ids = fr_dir / "identities"
    firsts = [sorted(p.iterdir())[0] for p in sorted(ids.iterdir()) if p.is_dir()]
    for i, a in enumerate(firsts):
        for b in firsts[i + 1 :]:
            result = Verifier(pipeline).verify_faces(read_image(a).rgb, read_image(b).rgb)
            assert result.decision.value == "no_match", (a.name, b.name, result.score)


def test_every_option_has_thresholds_checked_on_held_out_people(pipeline: Pipeline) -> None:
    manifest = pipeline.manifest
    assert manifest.default_choice and manifest.default_choice["chosen"] in OPTIONS
    assert manifest.default_embedder == manifest.default_choice["chosen"]
    for option in OPTIONS:
        point = manifest.threshold_for(option, 1e-3)
        assert point.weighting.startswith("equal weight per set")
        assert {"lfw_dev", "yaleb_moderate", "kpop_idols"} <= set(point.datasets)
        assert {r.name for r in point.per_set} >= {
            "lfw_dev", "lfw_dev_asian", "asian_celeb", "kpop_idols", "vn_celeb_toy",
            "yaleb_moderate",
        }
        assert "vn_celeb_toy" not in point.datasets  # 180 impostor pairs: sanity check only
        lo, hi = point.fmr_out_of_sample_ci
        assert lo <= point.fmr_out_of_sample <= hi
        print(f"\n{option}: held-out FMR {point.fmr_out_of_sample:.2e} ({lo:.1e}-{hi:.1e})")
    # Held out, SFace alone misses the claim 5.9x on average (kpop_idols 17x, Yale B 12x: its
    # thresholds do not carry over to unseen look-alikes); the shipped default holds it to 3x.
    shipped = manifest.threshold_for(manifest.default_embedder, 1e-3)
    assert shipped.fmr_out_of_sample <= 3 * shipped.fmr
    # lfw_dev (3.4M impostor pairs) supports 1e-5.
    assert manifest.get("mobilefacenet").threshold_for(1e-5).impostor_pairs >= 1_000_000


def test_evaluate_command_prints_the_documented_json(tmp_path, data_dir) -> None:
    """`biometric evaluate` on a folder source and a CSV pairs source, as an agency would."""
    fr = data_dir / "fr_examples" / "identities"
    photos = sorted(fr.glob("*/*"))
    csv = tmp_path / "pairs.csv"
    rows = ["file_x,file_y,same"]
    for x in photos[:4]:
        for y in photos[4:8]:
            rows.append(f"{os.path.relpath(x, tmp_path)},{os.path.relpath(y, tmp_path)},"
                        f"{'Yes' if x.parent == y.parent else 'No'}")
    csv.write_text("\n".join(rows) + "\n")
    proc = subprocess.run(
        [sys.executable, "-m", "biometric.cli", "evaluate", str(data_dir / "fr_examples"),
         str(csv), "--cap", "3", "--json", "--workers", "1"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) >= {"embedder", "fmr_claimed", "threshold", "sets"}
    folder, pairs = doc["sets"]
    assert folder["name"] == "fr_examples" and pairs["name"] == "pairs"
    assert folder["images"] == sum(min(3, len(list(p.iterdir()))) for p in fr.iterdir())
    assert pairs["genuine"] + pairs["impostor"] == 16  # all 16 listed pairs acquired
    for s in doc["sets"]:
        assert set(s) >= {"name", "images", "fta", "genuine", "impostor", "fnmr_at_threshold",
                          "fmr_at_threshold", "tar_at_fmr"}
        assert s["tar_at_fmr"] == {"1e-3": None, "1e-4": None}  # too few pairs: null
        assert s["fta"] == 0.0
    assert np.isclose(doc["threshold"], Pipeline().operating_point.threshold)


def test_evaluate_refuses_a_bad_source(tmp_path) -> None:
    bad = tmp_path / "pairs.csv"
    bad.write_text("a,b\n1,2\n")
    proc = subprocess.run(
        [sys.executable, "-m", "biometric.cli", "evaluate", str(bad)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2
    assert "file_x,file_y,same" in proc.stderr
