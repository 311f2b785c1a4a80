"""Shared fixtures. Real photos come from the shared data folder (BIOMETRIC_DATA_DIR, default
../shared/data); tests that need them fail, never skip, when it is missing: CI has it."""

from __future__ import annotations

from pathlib import Path

import pytest

from biometric import config
from biometric.evaluation import EmbeddedSet, discover_sets, embed_set
from biometric.pipeline import Pipeline


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = config.data_dir()
    assert path.is_dir(), f"shared photos not found at {path}; set BIOMETRIC_DATA_DIR"
    return path


@pytest.fixture(scope="session")
def fr_dir(data_dir: Path) -> Path:
    return data_dir / "fr_examples"


@pytest.fixture(scope="session")
def pipeline() -> Pipeline:
    p = Pipeline()
    p.warm_up()
    return p


@pytest.fixture(scope="session")
def embedded_sets(pipeline: Pipeline, data_dir: Path, tmp_path_factory) -> list[EmbeddedSet]:
    """Every identity set under the data root, embedded once for the whole session."""
    cache = tmp_path_factory.mktemp("embeddings")
    sets = discover_sets(data_dir)
    assert sets, f"no identity sets under {data_dir}"
    return [embed_set(pipeline, s, cache) for s in sets]
