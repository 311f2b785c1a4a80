"""The command line, run as a user would: a real subprocess on real photos."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from biometric import config
from biometric.manifest import load_manifest


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "biometric.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_verify_json(fr_dir: Path) -> None:
    ids = fr_dir / "identities"
    proc = _cli(
        "verify",
        str(ids / "kit_harington/john1.jpeg"),
        str(ids / "kit_harington/john2.jpeg"),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["decision"] == "match"
    assert result["score"] >= result["threshold"]
    assert {"detect", "align", "embed", "compare"} <= set(result["timings_ms"])
    assert "mobilefacenet" in result["models"]


def test_verify_bad_input_is_one_clear_line(tmp_path: Path, fr_dir: Path) -> None:
    bad = tmp_path / "card.jpg"
    bad.write_text("this is not a photo")
    proc = _cli("verify", str(bad), str(fr_dir / "identities/obama/obama.jpg"))
    assert proc.returncode == 2
    assert "unsupported_image_type" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_embed_folder_to_npy(tmp_path: Path, fr_dir: Path) -> None:
    out = tmp_path / "emb.npy"
    proc = _cli("embed", str(fr_dir / "identities" / "obama"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    vectors = np.load(out)
    dim = load_manifest(config.models_dir()).embedder_spec().embedding_size
    assert vectors.shape == (4, dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    index = [json.loads(line) for line in out.with_suffix(".index.jsonl").read_text().splitlines()]
    assert {r["identity"] for r in index} == {"obama"}


def test_detect_draws(tmp_path: Path, fr_dir: Path) -> None:
    drawn = tmp_path / "faces.png"
    proc = _cli("detect", str(fr_dir / "multi_face/two_people.jpg"), "--draw", str(drawn))
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["faces"]) >= 2
    assert drawn.stat().st_size > 10_000
