"""The quick modes of the accuracy, chip and stages benchmarks write sane JSON (no speed checks)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks import __main__ as cli
from benchmarks import accuracy, common, report
from biometric.calibrate import OPTIONS


def _load(out: Path, name: str) -> dict:
    files = sorted(out.glob(f"{name}-*-quick.json"))
    assert len(files) == 1, f"expected one {name} quick result in {out}: {files}"
    return json.loads(files[0].read_text())


def _check_common(doc: dict, name: str) -> None:
    assert doc["benchmark"] == name
    assert doc["settings"]["quick"] is True
    machine = doc["machine"]
    for key in ("cpu_model", "cpu_count", "platform", "python", "onnxruntime", "numpy"):
        assert machine[key], key
    assert doc["model_versions"] and all(doc["model_versions"].values())


def _check_figures(fig: dict, fta_key: str = "failure_to_acquire") -> None:
    assert 0.0 <= fig[fta_key] <= 1.0
    assert fig["genuine_pairs"] > 0 and fig["impostor_pairs"] > fig["genuine_pairs"]
    for fmr in ("0.01", "0.001", "0.0001"):
        point = fig["at_fmr"][fmr]
        assert point["impostor_pairs"] == fig["impostor_pairs"]
        assert point["supported"] == (fig["impostor_pairs"] >= 10 / float(fmr))
        assert 0.0 <= point["fnmr"] <= 1.0
        assert math.isclose(point["tar"] + point["fnmr"], 1.0)
        assert point["measured_fmr"] <= float(fmr) + 1e-12
    # quick subsets have < 100k impostor pairs: 1e-4 cannot be supported
    assert fig["at_fmr"]["0.0001"]["supported"] is False
    assert 0.0 <= fig["eer"] <= 0.5
    assert fig["genuine_mean"] > fig["impostor_mean"]
    hist = fig["histogram"]
    assert len(hist["genuine"]) == len(hist["bin_edges"]) - 1
    assert sum(hist["genuine"]) == fig["genuine_pairs"]
    assert sum(hist["impostor"]) == fig["impostor_pairs"]


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench")


def test_accuracy_quick(out_dir: Path) -> None:
    assert cli.main(["accuracy", "--quick", "--out", str(out_dir)]) == 0
    doc = _load(out_dir, "accuracy")
    _check_common(doc, "accuracy")
    assert "yaleb_moderate" in doc["sets"]
    yale = doc["sets"]["yaleb_moderate"]
    assert yale["images"] == 60
    for fig in [*doc["sets"].values(), doc["pooled"]]:
        _check_figures(fig)
    pooled = doc["pooled"]
    assert pooled["genuine_pairs"] == sum(s["genuine_pairs"] for s in doc["sets"].values())
    # Sanity, not a target: one threshold over every set pooled, Yale B's tight crops holding
    # the impostor tail; measured 0.758 with SFace on the quick subsets (2026-12-02).
    assert pooled["at_fmr"]["0.001"]["tar"] > 0.7
    diff = doc["differential"]
    assert set(diff["options"]) == set(OPTIONS)
    assert diff["default"] in diff["options"]
    for option, fig in diff["options"].items():
        names = {s["name"] for s in fig["sets"]}
        assert names == set(doc["sets"]), option
        for s in fig["sets"]:
            assert 0.0 <= s["fta"] <= 1.0 and 0.0 <= s["retake_rate_live"] <= 1.0
            assert s["fmr_at_threshold"] is None or 0.0 <= s["fmr_at_threshold"] <= 1.0
            # quick subsets: 20 people x 3 photos = 1,710 impostor pairs, too few for 1e-3
            assert s["tar_at_fmr"]["1e-3"] is None
        view1 = next(s for s in fig["sets"] if s["name"] == "lfw_dev")["view1"]
        assert view1["pairs"] == 40 and 0.5 <= view1["accuracy_at_threshold"] <= 1.0
    assert len(diff["rows"]) == len(OPTIONS) * len(doc["sets"])
    assert accuracy.worst_set_line(doc).startswith("**Worst set")
    for png in doc["plots"]:
        assert (out_dir / png).stat().st_size > 1000


def test_chip_quick(out_dir: Path) -> None:
    assert cli.main(["chip", "--quick", "--out", str(out_dir)]) == 0
    doc = _load(out_dir, "chip")
    _check_common(doc, "chip")
    _check_figures(doc["plain"]["pooled"])
    assert set(doc["conditions"]) >= {"chip240"}
    for cond in doc["conditions"].values():
        pooled = cond["pooled"]
        _check_figures(pooled, "chip_failure_to_acquire")
        assert pooled["chip_failure_to_acquire"] < 0.5
        size = pooled["jp2_size"]
        assert 0 < size["min_bytes"] <= size["median_bytes"] <= size["max_bytes"] <= 20_000
    chip240 = doc["conditions"]["chip240"]["pooled"]["jp2_size"]
    assert chip240["fraction_in_10_20_kb"] > 0.9
    assert (out_dir / doc["plots"][0]).is_file()


def test_stages_quick(out_dir: Path) -> None:
    assert cli.main(["stages", "--quick", "--out", str(out_dir)]) == 0
    doc = _load(out_dir, "stages")
    _check_common(doc, "stages")
    assert set(doc["results"]) == {"1", "2"}
    expected = {
        "decode_jpeg_640x480",
        "decode_chip_jp2_240x320",
        "align",
        "embed_batch1",
        "embed_batch8",
        "compare",
        "chip_dg2_parse",
        "chip_auth_ecdsa",
        "chip_auth_rsa_pkcs1v15",
        "chip_auth_rsa_pss",
    }
    for fe in ("mtcnn", "blazeface"):
        expected |= {f"detect_live_640x480_{fe}", f"detect_chip_240x320_{fe}", f"verify_{fe}",
                     f"chip_prepare_{fe}", f"verify_prepared_{fe}"}
    for res in doc["results"].values():
        assert set(res["stages"]) == expected
        chip = res["chip_auth"]
        assert set(chip["median_ms"]) == {"chip_auth_ecdsa", "chip_auth_rsa_pkcs1v15",
                                          "chip_auth_rsa_pss"}
        assert chip["met"] == (chip["worst_median_ms"] <= chip["target_ms"])
        for st in res["stages"].values():
            assert st["runs"] == doc["settings"]["runs_per_stage"]
            assert 0 < st["min_ms"] <= st["median_ms"] <= st["p99_ms"] <= st["max_ms"]
        assert res["throughput"]["live_faces_per_second_per_core"] > 0
        after = res["after_capture"]
        assert after["median_ms"] == res["stages"]["verify_prepared_blazeface"]["median_ms"]
        assert after["met_wall"] == (after["median_ms"] <= after["target_median_ms"])
        assert res["embedder"] and res["operating_point"]["fmr"] > 0
        assert set(res["verify_decisions_on_inputs"]) == {
            "mtcnn", "blazeface", "mtcnn_prepared", "blazeface_prepared"}
        for counts in res["verify_decisions_on_inputs"].values():
            # real decisions, both kinds (genuine and impostor inputs), not retakes
            assert counts["match"] and counts["no_match"]
            assert counts["not_decided"] <= 0.05 * counts["total"]


def test_benchmarks_refuse_to_time_retakes() -> None:
    common.check_decisions({"match": 20, "no_match": 20}, "ok")
    with pytest.raises(RuntimeError, match="not match/no_match"):
        common.check_decisions({"match": 10, "no_match": 8, "retake": 2}, "too many retakes")
    with pytest.raises(RuntimeError, match="both"):
        common.check_decisions({"match": 40}, "only matches")


def test_quality_quick(out_dir: Path) -> None:
    assert cli.main(["quality", "--quick", "--out", str(out_dir)]) == 0
    doc = _load(out_dir, "quality")
    _check_common(doc, "quality")
    yale = doc["sets"]["yaleb_moderate"]
    assert yale["measured"] > 0.9 * yale["images"]
    assert 0 <= yale["distribution"]["score"]["50"] <= 100
    assert -1 <= yale["spearman_min_quality_vs_genuine_score"] <= 1
    models = doc["liveness"]["models"]
    assert set(models) == {"antispoof", "minifasnet"}
    for fig in models.values():
        pooled = fig["pooled"]
        assert pooled["bpcer"]["samples"] > 0 and set(pooled["apcer"]) == {"print", "screen"}
        assert all(v["samples"] == pooled["bpcer"]["samples"] for v in pooled["apcer"].values())
        assert "yaleb_moderate" not in fig["sets"]  # grey crops are not colour bona fide photos
        assert 0 <= pooled["bpcer"]["rate"] <= 1


def test_capture_quick(out_dir: Path) -> None:
    assert cli.main(["capture", "--quick", "--out", str(out_dir)]) == 0
    doc = _load(out_dir, "capture")
    _check_common(doc, "capture")
    assert 0 < doc["library"]["cpu_ms"]["mean"] <= doc["library"]["wall_ms"]["mean"] * 1.5
    runs = doc["settings"]["frames"] * doc["settings"]["rounds"]
    assert doc["endpoint"]["calls"] == runs > 0
    assert doc["endpoint"]["server_cpu_ms_per_call"] > 0
    assert sum(doc["library"]["instructions"].values()) == runs


def test_report_renders(tmp_path: Path) -> None:
    # The committed results (every kind has one) render as tables, each in its own section.
    headings = {"accuracy": "## Accuracy", "chip": "## Live photo vs chip portrait",
                "stages": "## Stage latency", "peer": "## Peer", "quality": "## Capture quality",
                "capture": "## Guided capture", "int8": "## Faster forms of the embedders",
                "index": "## 1:N index",
                "api": "## API load", "scale": "## National scale",
                "shared_index": "## Shared index"}
    assert set(headings) == set(report.KINDS)
    text = report.render(common.DEFAULT_OUT)
    assert text.startswith("<!-- GENERATED FILE") and "# Benchmarks" in text
    for kind, heading in headings.items():
        assert heading in text, kind
    assert "could not be rendered" not in text and "| figure | value |" not in text
    # The committed stages, peer, api and int8 results have the prepared-chip flow and name
    # their embedder and operating point; their sections show both.
    for fragment in ["| threads | after capture median ms |", "`verify_prepared_blazeface`",
                     "| ours, after the capture (chip prepared) |", "| prepared | 4 |",
                     "| embedder | CPU ms fp32 (1 crop) | CPU ms fp32 offline | CPU ms int8 |",
                     "| embedder | set | FMR | genuine pairs |"]:
        assert fragment in text, fragment
    assert text.count("operating point FMR") >= 3  # stages, peer, api
    md = tmp_path / "BENCHMARKS.md"
    assert report.run(common.DEFAULT_OUT, md).read_text() == text


def test_missing_external_benchmark_is_reported(tmp_path: Path, monkeypatch) -> None:
    def absent(module: str):
        raise ModuleNotFoundError(f"No module named '{module}'", name=module)

    monkeypatch.setattr(cli.importlib, "import_module", absent)
    assert cli.main(["index", "--quick", "--out", str(tmp_path)]) == 1
    assert cli.main(["api", "--quick", "--out", str(tmp_path)]) == 1


def test_error_figures_support_rule() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    fig = common.error_figures(rng.normal(0.7, 0.1, 500), rng.normal(0.0, 0.1, 20_000))
    assert fig["at_fmr"]["0.001"]["supported"] is True
    assert fig["at_fmr"]["0.0001"]["supported"] is False
    assert fig["at_fmr"]["0.0001"]["impostor_pairs_needed"] == 100_000
    assert fig["eer"] < 0.01
