"""The command-line rows of issue 20, run as a user would (a real subprocess, real photos, an
80-column terminal): every error one line with a stable code and exit status 2, the
``evaluate`` table whole at 80 columns, decoding timed, counts and progress read right."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ERROR_LINE = re.compile(r"^error \(([a-z_]+)\): \S.*$")


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "biometric.cli", *args], capture_output=True, text=True,
        timeout=300, check=False,
        env={**os.environ, "COLUMNS": "80", "TERM": "dumb", **(env or {})},
    )


def _one_error(proc: subprocess.CompletedProcess, code: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    match = ERROR_LINE.match(lines[0])
    assert match and match.group(1) == code, lines[0]


def test_detect_draw_to_a_missing_folder_or_a_text_name_is_one_error(tmp_path: Path,
                                                                     fr_dir: Path) -> None:
    photo = str(fr_dir / "identities/obama/obama.jpg")
    missing = tmp_path / "no-such-folder" / "faces.png"
    _one_error(_cli("detect", photo, "--draw", str(missing)), "invalid_output")
    assert not missing.exists()
    text = tmp_path / "faces.txt"
    _one_error(_cli("detect", photo, "--draw", str(text)), "invalid_output")
    assert not text.exists()
    _one_error(_cli("detect", str(tmp_path / "nothing.jpg")), "image_decode_error")


def test_usage_errors_are_one_line_too() -> None:
    _one_error(_cli("detect"), "usage_error")  # a missing argument
    _one_error(_cli("verify", "a.jpg", "b.jpg", "--bogus"), "usage_error")
    _one_error(_cli("no-such-command"), "usage_error")
    assert _cli("--help").returncode == 0


def test_verify_times_the_decoding_and_shows_the_staff_score(fr_dir: Path) -> None:
    ids = fr_dir / "identities"
    proc = _cli("verify", str(ids / "kit_harington/john1.jpeg"),
                str(ids / "kit_harington/john2.jpeg"))
    assert proc.returncode == 0, proc.stderr
    decode = re.search(r"decode (\d+\.\d+) ms", proc.stdout)
    assert decode and float(decode.group(1)) > 0.0, proc.stdout
    assert re.search(r"score \d+/100 \(raw ", proc.stdout), proc.stdout
    # a portrait image, not the chip files: the chip was not verified, and the output says so
    assert "chip not verified" in proc.stdout
    assert not re.search(r"\b0\.0 ms", proc.stdout), proc.stdout  # no stage reads as skipped


def test_evaluate_table_fits_80_columns(tmp_path: Path, fr_dir: Path) -> None:
    ids = fr_dir / "identities"
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("file_x,file_y,same\n"
                     f"{ids / 'obama/obama.jpg'},{ids / 'obama/obama2.jpg'},1\n"
                     f"{ids / 'obama/obama.jpg'},{ids / 'biden/biden.jpg'},0\n"
                     f"{ids / 'kit_harington/john1.jpeg'},{ids / 'kit_harington/john2.jpeg'},1\n")
    proc = _cli("evaluate", str(pairs), "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert "…" not in proc.stdout and "..." not in proc.stdout, proc.stdout
    for measure in ("FTA", "FNMR", "FMR / claim", "TAR@1e-3", "TAR@1e-4"):
        assert any(line.lstrip("│┃| ").startswith(measure) for line in lines), measure


def test_enrol_counts_and_progress_read_right(tmp_path: Path, fr_dir: Path) -> None:
    db = f"sqlite:///{tmp_path / 'g.db'}"
    env = {"BIOMETRIC_INDEX_DIR": str(tmp_path / "index")}
    photo = str(fr_dir / "identities/obama/obama.jpg")
    first = _cli("enrol", "900000000001", photo, "--db", db, env=env)
    assert first.returncode == 0, first.stderr
    second = _cli("enrol", "900000000002", photo, "--db", db, env=env)
    assert second.returncode == 0, second.stderr
    assert "gallery: 1 template," in second.stderr, second.stderr
    assert "1 templates" not in second.stderr and "0/?" not in second.stderr, second.stderr
