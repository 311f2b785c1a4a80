"""Peer comparison: face_recognition (dlib HOG detector + ResNet encoder) beside this pipeline.

face_recognition is NOT a dependency of this project and is never installed by CI. It runs as a
subprocess with the interpreter of a separate scratch venv (default ``/tmp/peervenv``, override
with ``BENCH_PEER_PYTHON``), through ``benchmarks/peer_worker.py``. dlib need not be compiled:

    python3 -m venv /tmp/peervenv
    /tmp/peervenv/bin/pip install dlib-bin==20.0.1.post1 numpy Pillow click
    /tmp/peervenv/bin/pip install --no-deps face-recognition face-recognition-models

When that interpreter or dlib is missing the benchmark says so and reports ours alone. The
peer's results on the accuracy images are cached (``var/cache/peer``): ~0.7 s an image.

Accuracy: the images and pairs of the accuracy benchmark (all pairs within each set), each set
cut to its first PEER_MAX_IMAGES images (whole identities); the peer uses its own detector
(``face_locations(model="hog")``, upsample 1) and ``face_encodings``; its score is ``1 -
euclidean distance``. Figures are given on each system's own acquired images and on the images
both acquired. Speed, per verification: the same live 640x480 JPEG and 240x320 JPEG 2000 chip
pairs (genuine and impostor); ours one-shot = decode, detect, align, embed both images, compare,
decide; ours after the capture = the same against a chip prepared before; theirs = load, locate
and encode both images, distance. Measured in one run, pair by pair, alternating which system
goes first, so both see the same machine load; wall-clock and CPU time of each. Ratios are
ours / theirs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import accuracy, common, stages
from benchmarks.markdown import at_fmr, f, source_line, table
from biometric.chip.policy import ChipAuthPolicy
from biometric.evaluation import EmbeddedSet, IdentitySet, pair_scores
from biometric.verification import Verifier

WORKER = Path(__file__).with_name("peer_worker.py")
DEFAULT_PEER_PYTHON = "/tmp/peervenv/bin/python"
PEER_CACHE = common.REPO_ROOT / "var" / "cache" / "peer"
PEER_PACKAGES = ["face_recognition", "face_recognition_models", "Click", "Pillow", "numpy"]
SPEED_PAIRS = 16  # genuine + impostor verifications timed per system
PEER_CPU_TARGET = 10.0  # issue 23: at least 10x less CPU per verification
PEER_MAX_IMAGES = 120


def peer_python() -> str:
    return os.environ.get("BENCH_PEER_PYTHON", DEFAULT_PEER_PYTHON)


def _probe(python: str, code: str) -> tuple[bool, str]:
    if not Path(python).exists():
        return False, f"{python} does not exist"
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
    msg = (proc.stdout + proc.stderr).strip().splitlines()
    return proc.returncode == 0, (msg[-1] if msg else "")


def peer_status(install: bool = True) -> tuple[bool, str]:
    """(available, message). Installs face_recognition --no-deps into the peer venv if needed."""
    python = peer_python()
    ok, msg = _probe(python, "import dlib; print(dlib.__version__)")
    if not ok:
        return False, f"peer unavailable: dlib not importable with {python} ({msg})"
    ok, msg2 = _probe(python, "import face_recognition, numpy; print(face_recognition.__version__)")
    if not ok and install:
        common.console.print(f"installing {PEER_PACKAGES} (--no-deps) into the peer venv")
        proc = subprocess.run(
            [python, "-m", "pip", "install", "--no-deps", *PEER_PACKAGES],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if proc.returncode != 0:
            return False, f"peer unavailable: pip install failed: {proc.stderr.strip()[-300:]}"
        ok, msg2 = _probe(
            python, "import face_recognition, numpy; print(face_recognition.__version__)"
        )
    if not ok:
        return False, f"peer unavailable: face_recognition not importable ({msg2})"
    return True, f"dlib {msg}, face_recognition {msg2} at {python}"


class PeerWorker:
    """One face_recognition process for the whole run, spoken to one image at a time."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.versions = self._read()["versions"]

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"peer worker stopped: {err.strip()[-500:]}")
        return json.loads(line)

    def ask(self, path: str | Path) -> dict[str, Any]:
        assert self.proc.stdin is not None
        request = {"path": str(path), "upsample": 1, "model": "hog"}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()


@contextmanager
def peer_worker() -> Iterator[PeerWorker]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [peer_python(), str(WORKER)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield PeerWorker(proc)
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def peer_accuracy_results(worker: PeerWorker, paths: list[Path]) -> dict[str, dict]:
    """The peer on every accuracy image. Each answer is appended to a cache file as it comes
    (keyed by file identity and peer versions), so an interrupted run resumes."""
    key = hashlib.sha256(json.dumps(worker.versions, sort_keys=True).encode()).hexdigest()[:16]
    cache = PEER_CACHE / f"peer-{key}.jsonl"
    known: dict[tuple, dict] = {}
    if cache.is_file():
        for line in cache.read_text().splitlines():
            r = json.loads(line)
            known[(r["path"], r["size"], r["mtime_ns"])] = r
    cache.parent.mkdir(parents=True, exist_ok=True)
    results = {}
    with (
        cache.open("a") as out,
        common.progress_bar("peer: face_recognition on every image", len(paths)) as advance,
    ):
        for p in paths:
            st = p.stat()
            ident = (str(p), st.st_size, st.st_mtime_ns)
            if ident not in known:
                r = worker.ask(p)
                known[ident] = {
                    "path": str(p),
                    "size": st.st_size,
                    "mtime_ns": st.st_mtime_ns,
                    "faces": r["faces"],
                    "encoding": r["encoding"],
                }
                out.write(json.dumps(known[ident]) + "\n")
                out.flush()
            results[str(p)] = known[ident]
            advance(1)
    return results


def peer_subset(ident: IdentitySet) -> IdentitySet:
    """At most PEER_MAX_IMAGES images of a set, whole identities in order (so genuine pairs
    stay): the peer costs ~0.7 s of CPU an image (lfw_dev alone: 45 CPU-minutes)."""
    if len(ident.images) <= PEER_MAX_IMAGES:
        return ident
    images, labels = [], []
    for img, label in zip(ident.images, ident.labels, strict=True):
        if len(images) >= PEER_MAX_IMAGES and label != labels[-1]:
            break
        images.append(img)
        labels.append(label)
    return IdentitySet(ident.name, images, labels)


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0 or not np.isfinite(a) or not np.isfinite(b):
        return None
    return float(a / b)


def _tar(f: dict) -> float | None:
    return f["at_fmr"].get("0.001", {}).get("tar")


def accuracy_part(ours: list[EmbeddedSet], peer_results: dict[str, dict]) -> dict[str, Any]:
    theirs = []
    for e in ours:
        emb = np.full((len(e.images), 128), np.nan, np.float64)
        for i, p in enumerate(e.images):
            enc = peer_results[str(p)]["encoding"]
            if enc is not None:
                emb[i] = enc
        theirs.append(emb)
    out: dict[str, Any] = {}
    for i, e in enumerate([*ours, None]):  # None = pooled
        name = "pooled" if e is None else e.name
        sets_ours = ours if e is None else [e]
        sets_theirs = theirs if e is None else [theirs[i]]
        labels = np.concatenate([s.labels for s in sets_ours])
        ok_ours = np.concatenate([s.acquired for s in sets_ours])
        ok_theirs = np.concatenate([~np.isnan(t[:, 0]) for t in sets_theirs])
        g_o, i_o = _scores_ours(sets_ours, None)
        g_t, i_t = _scores_theirs(sets_ours, sets_theirs, None)
        both = [
            s.acquired & ~np.isnan(t[:, 0]) for s, t in zip(sets_ours, sets_theirs, strict=True)
        ]
        g_ob, i_ob = _scores_ours(sets_ours, both)
        g_tb, i_tb = _scores_theirs(sets_ours, sets_theirs, both)
        f_o, f_t = common.error_figures(g_o, i_o), common.error_figures(g_t, i_t)
        f_ob, f_tb = common.error_figures(g_ob, i_ob), common.error_figures(g_tb, i_tb)
        fta_o, fta_t = float(1 - ok_ours.mean()), float(1 - ok_theirs.mean())
        out[name] = {
            "images": len(labels),
            "ours": {"failure_to_acquire": fta_o, **f_o},
            "theirs": {"failure_to_acquire": fta_t, **f_t},
            "ours_on_common_images": f_ob,
            "theirs_on_common_images": f_tb,
            "ratios_ours_over_theirs": {
                "tar_at_1e-3": _ratio(_tar(f_o), _tar(f_t)),
                "tar_at_1e-3_common_images": _ratio(_tar(f_ob), _tar(f_tb)),
                "eer": _ratio(f_o["eer"], f_t["eer"]),
                "failure_to_acquire": _ratio(fta_o, fta_t),
            },
        }
    return out


def _scores_ours(sets: list[EmbeddedSet], keep: list[np.ndarray] | None):
    if keep is None:
        ps = pair_scores(sets)
    else:
        ps = pair_scores(
            [
                EmbeddedSet(s.name, s.images, s.labels, np.where(k[:, None], s.embeddings, np.nan))
                for s, k in zip(sets, keep, strict=True)
            ]
        )
    return ps.genuine, ps.impostor


def _scores_theirs(sets: list[EmbeddedSet], theirs: list[np.ndarray], keep):
    genuine, impostor = [], []
    for n, (s, t) in enumerate(zip(sets, theirs, strict=True)):
        ok = ~np.isnan(t[:, 0]) if keep is None else keep[n]
        emb, labels = t[ok], s.labels[ok]
        sq = (emb**2).sum(axis=1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * emb @ emb.T, 0.0))
        sims = 1.0 - d
        same = labels[:, None] == labels[None, :]
        upper = np.triu(np.ones_like(same, dtype=bool), k=1)
        genuine.append(sims[same & upper])
        impostor.append(sims[~same & upper])
    return np.concatenate(genuine), np.concatenate(impostor)


def speed_pairs(pipeline, folder: Path, count: int) -> list[dict[str, Any]]:
    """The stages benchmark's verification inputs (live 640x480 JPEG, chip 240x320 JPEG 2000;
    genuine pairs then as many impostor pairs), written to ``folder`` for the peer."""
    inputs = stages.make_inputs(pipeline, max(1, count // 2))
    for k, x in enumerate(inputs):
        x["live_file"], x["chip_file"] = folder / f"live{k:03d}.jpg", folder / f"chip{k:03d}.jp2"
        x["live_file"].write_bytes(x["live_bytes"])
        x["chip_file"].write_bytes(x["chip_bytes"])
    return inputs


def _timed(fn) -> tuple[float, float, Any]:
    cpu, start = time.process_time(), time.perf_counter()
    out = fn()
    return (time.perf_counter() - start) * 1000.0, (time.process_time() - cpu) * 1000.0, out


def _summary(wall: list[float], cpu: list[float]) -> dict[str, float]:
    return {
        "median_ms": float(np.median(wall)),
        "p99_ms": float(np.percentile(wall, 99)),
        "cpu_median_ms": float(np.median(cpu)),
    }


# face_recognition's documented default: a distance of 0.6 or less is the same person.
PEER_TOLERANCE = 0.6


def interleaved_speed(
    verifier: Verifier, worker: PeerWorker | None, pairs: list[dict[str, Any]]
) -> dict[str, Any]:
    """Per verification, both systems on each pair in turn (who goes first alternates; the first
    pair is a warm-up for both). Ours one-shot = ``Verifier.compare(live, chip)``; ours after
    the capture = ``Verifier.compare(live, prepared chip)`` (the chip prepared untimed); theirs
    = load + locate + encode both images + distance."""
    times: dict[str, tuple[list[float], list[float]]] = {
        k: ([], []) for k in ("ours_one_shot", "ours_after_capture", "theirs")}
    decisions: dict[str, dict[str, int]] = {k: {} for k in times}

    def note(system: str, k: int, wall: float, cpu: float, decision: str) -> None:
        if k:
            times[system][0].append(wall)
            times[system][1].append(cpu)
            decisions[system][decision] = decisions[system].get(decision, 0) + 1

    for k, x in enumerate([pairs[0], *pairs]):
        order = ["ours", "theirs"] if k % 2 == 0 else ["theirs", "ours"]
        for system in order:
            if system == "ours":
                wall, cpu, r = _timed(lambda x=x: verifier.compare(x["live_bytes"],
                                                                   x["chip_bytes"]))
                note("ours_one_shot", k, wall, cpu, r.decision.value)
                prepared = verifier.prepare(x["chip_bytes"])
                wall, cpu, r = _timed(lambda x=x, p=prepared: verifier.compare(x["live_bytes"],
                                                                               p))
                note("ours_after_capture", k, wall, cpu, r.decision.value)
            elif worker is not None:
                live, chip = worker.ask(x["live_file"]), worker.ask(x["chip_file"])
                wall = sum(r["load_ms"] + r["detect_ms"] + r["encode_ms"] for r in (live, chip))
                cpu = live["cpu_ms"] + chip["cpu_ms"]
                if live["encoding"] is None or chip["encoding"] is None:
                    decision = "retake"
                else:
                    d = np.linalg.norm(np.subtract(live["encoding"], chip["encoding"]))
                    decision = "match" if d <= PEER_TOLERANCE else "no_match"
                note("theirs", k, wall, cpu, decision)
    return {system: {**_summary(*t), "decisions": decisions[system]}
            for system, t in times.items() if t[0]}


@contextmanager
def _maybe_worker(available: bool) -> Iterator[PeerWorker | None]:
    if not available:
        yield None
        return
    with peer_worker() as worker:
        yield worker


def run(quick: bool, out_dir: Path, cache_dir: Path | None = common.EMBED_CACHE) -> dict:
    pipeline = common.make_pipeline(threads=1)
    sets = [peer_subset(s) for s in accuracy.load_sets(quick)]
    ours = accuracy.embed_all(pipeline, sets, cache_dir)
    ours_figures, _ = accuracy.evaluate(ours, "ours")
    payload: dict[str, Any] = {
        "settings": {
            "quick": quick,
            "peer_python": peer_python(),
            "peer": "face_recognition: face_locations(model='hog', upsample=1) + face_encodings",
            "peer_score": "1 - euclidean distance of 128-d encodings",
            "our_score": "cosine similarity",
            "speed_pairs": "the stages benchmark's inputs: a real photo letterboxed to "
            "640x480 JPEG q90 (live) and another photo of the same person (or of another, "
            "impostor pairs) rendered as a 240x320 JPEG 2000 chip portrait",
            "embedder": pipeline.option,
            "operating_point": {"fmr": pipeline.operating_point.fmr,
                                "threshold": pipeline.operating_point.threshold},
            "peer_decision": f"distance <= {PEER_TOLERANCE} (face_recognition's default)",
            "onnxruntime_threads": 1,
            "front_end": pipeline.settings.front_end.value,
            "ratio": "ours / theirs",
        },
        "model_versions": pipeline.model_versions,
    }
    if quick:
        available, message = False, "peer not run in --quick mode"
    else:
        available, message = peer_status(install=True)
    payload["peer_available"] = available
    payload["peer_message"] = message
    common.console.print(f"[bold]{message}[/bold]")
    with tempfile.TemporaryDirectory() as tmp, _maybe_worker(available) as worker:
        pairs = speed_pairs(pipeline, Path(tmp), 4 if quick else SPEED_PAIRS)
        speed = interleaved_speed(Verifier(pipeline, ChipAuthPolicy.OFF), worker, pairs)
        speed_ours = speed["ours_one_shot"]
        payload["speed"] = {"pairs": len(pairs), "per_verification": speed}
        if worker is not None:
            paths = [p for s in sets for p in s.images]
            results = peer_accuracy_results(worker, paths)
            payload["peer_versions"] = worker.versions
            payload["accuracy"] = accuracy_part(ours, results)
            theirs = speed["theirs"]
            after = speed["ours_after_capture"]
            payload["speed"]["ratio_ms_ours_over_theirs"] = _ratio(
                speed_ours["median_ms"], theirs["median_ms"]
            )
            payload["speed"]["ratio_cpu_ours_over_theirs"] = _ratio(
                speed_ours["cpu_median_ms"], theirs["cpu_median_ms"]
            )
            payload["speed"]["cpu_times_less_than_theirs"] = {
                "one_shot": _ratio(theirs["cpu_median_ms"], speed_ours["cpu_median_ms"]),
                "after_capture": _ratio(theirs["cpu_median_ms"], after["cpu_median_ms"]),
                "target": PEER_CPU_TARGET,
            }
            rows = []
            for name, f in payload["accuracy"].items():
                r = f["ratios_ours_over_theirs"]
                rows.append(
                    [
                        name,
                        f["ours"]["failure_to_acquire"],
                        f["theirs"]["failure_to_acquire"],
                        _tar(f["ours"]),
                        _tar(f["theirs"]),
                        _tar(f["ours_on_common_images"]),
                        _tar(f["theirs_on_common_images"]),
                        f["ours"]["eer"],
                        f["theirs"]["eer"],
                        r["tar_at_1e-3"],
                    ]
                )
            common.print_table(
                "Ours vs face_recognition (dlib)",
                [
                    "set",
                    "FTA ours",
                    "FTA theirs",
                    "TAR@1e-3 ours",
                    "theirs",
                    "ours (common)",
                    "theirs (common)",
                    "EER ours",
                    "EER theirs",
                    "TAR ratio",
                ],
                rows,
            )
        else:
            payload["accuracy"] = {"ours_only": ours_figures}
        common.print_table(
            "Per verification (interleaved): 640x480 JPEG live + 240x320 JPEG 2000 chip",
            ["system", "median ms", "p99 ms", "CPU median ms"],
            [[name, v["median_ms"], v["p99_ms"], v["cpu_median_ms"]] for name, v in speed.items()],
        )
    common.write_result(out_dir, "peer", payload)
    return payload


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: python -m benchmarks peer")


# -- BENCHMARKS.md section (python -m benchmarks report) ---------------------------------


def _speed_lines(sp: dict, st: dict) -> list[str]:
    """Speed table: per verification (one-shot and after the capture) since issue 23, per
    640x480 image in the older committed results."""
    if "per_verification" not in sp:
        o, t = sp.get("ours_ms_per_640px_image", {}), sp.get("theirs_ms_per_640px_image", {})
        return table(["per 640x480 image (interleaved, same run)", "median ms", "p99 ms",
                      "CPU median ms"],
                     [[f"ours ({st.get('front_end', 'mtcnn')} front end)", o.get("median_ms"),
                       o.get("p99_ms"), o.get("cpu_median_ms")],
                      ["face_recognition (HOG + ResNet)", t.get("median_ms"), t.get("p99_ms"),
                       t.get("cpu_median_ms")]])
    names = {"ours_one_shot": "ours, one-shot (both images)",
             "ours_after_capture": "ours, after the capture (chip prepared)",
             "theirs": "face_recognition (HOG + ResNet), both images"}
    rows = [[names[k], v["median_ms"], v["p99_ms"], v["cpu_median_ms"],
             ", ".join(f"{d} {n}" for d, n in sorted(v["decisions"].items()))]
            for k, v in sp["per_verification"].items()]
    out = table([f"per verification ({sp['pairs']} pairs, interleaved, same run)", "median ms",
                 "p99 ms", "CPU median ms", "decisions"], rows)
    less = sp.get("cpu_times_less_than_theirs")
    if less:
        # One decimal: f()'s one significant digit rounded 2.85 up to "3x".
        out.append(f"CPU per verification: ours one-shot uses {less['one_shot']:.1f}x less "
                   f"than face_recognition, after the capture {less['after_capture']:.1f}x "
                   f"less (target {less['target']:g}x).")
    return out


def section(path: Path, doc: dict) -> list[str]:
    out = ["## Peer: face_recognition (dlib)", "", source_line(path, doc), ""]
    out.append(f"Status: {doc.get('peer_message')}.")
    out.append("")
    st = doc["settings"]
    if "embedder" in st:
        out.append(f"Ours: embedder `{st['embedder']}`, operating point FMR "
                   f"{f(st['operating_point']['fmr'])} (threshold "
                   f"{f(st['operating_point']['threshold'])}); theirs: {st.get('peer_decision')}.")
        out.append("")
    sp = doc.get("speed", {})
    if not doc.get("peer_available"):
        out += _speed_lines(sp, st)
        return [*out, ""]
    pv = doc.get("peer_versions", {})
    out.append(
        f"Peer versions: {', '.join(f'{k} {v}' for k, v in pv.items())}. "
        f"{doc['settings'].get('peer')}; score {doc['settings'].get('peer_score')}. "
        "Ratios are ours / theirs. 'common' = only the images both systems acquired."
    )
    out.append("")
    rows = []
    for name, a in doc["accuracy"].items():
        r = a["ratios_ours_over_theirs"]
        rows.append(
            [
                name,
                a["images"],
                a["ours"]["failure_to_acquire"],
                a["theirs"]["failure_to_acquire"],
                at_fmr(a["ours"], "0.001", "tar"),
                at_fmr(a["theirs"], "0.001", "tar"),
                r["tar_at_1e-3"],
                at_fmr(a["ours_on_common_images"], "0.001", "tar"),
                at_fmr(a["theirs_on_common_images"], "0.001", "tar"),
                r["tar_at_1e-3_common_images"],
                a["ours"]["eer"],
                a["theirs"]["eer"],
            ]
        )
    out += table(
        [
            "set",
            "images",
            "FTA ours",
            "FTA theirs",
            "TAR@1e-3 ours",
            "TAR@1e-3 theirs",
            "ratio",
            "TAR@1e-3 ours (common)",
            "theirs (common)",
            "ratio (common)",
            "EER ours",
            "EER theirs",
        ],
        rows,
    )
    out += _speed_lines(sp, st)
    return [*out, ""]
