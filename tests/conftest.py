"""Shared fixtures. Real photos come from the shared data folder (BIOMETRIC_DATA_DIR, default
../shared/data); tests that need them fail, never skip, when it is missing: CI has it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from biometric import config
from biometric.calibrate import EMBEDDERS
from biometric.evaluation import AcquiredSet, EmbeddedSet, acquire_sets, discover_sets
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


# Photos per person, as `biometric evaluate --cap` (keeps lfw_dev's most photographed people from
# dominating its genuine pairs).
CAP = 10


@pytest.fixture(scope="session")
def acquired_sets(pipeline: Pipeline, data_dir: Path) -> list[AcquiredSet]:
    """Every identity set under the data root through the shipped acquisition and every
    embedder, once for the whole session (on every core). Cached on disk like the benchmarks'
    embeddings (``var/cache/embeddings``): the key changes with any model, setting or file, so
    a stale entry cannot be read, and a second run costs seconds instead of minutes."""
    sets = discover_sets(data_dir, CAP)
    assert sets, f"no identity sets under {data_dir}"
    return acquire_sets(sets, EMBEDDERS, pipeline, cache_dir=config.cache_dir() / "embeddings")


@pytest.fixture(scope="session")
def embedded_sets(pipeline: Pipeline, acquired_sets: list[AcquiredSet]) -> list[EmbeddedSet]:
    """The sets embedded by the default pipeline's embedder."""
    return [a.embedded(pipeline.embedder.spec.name) for a in acquired_sets]


PG_HOST_URL = "postgresql+psycopg://{user}@127.0.0.1:5432/test"
PG_USERS = ("postgres", "root")


@contextmanager
def pg_schema_url(prefix: str) -> Iterator[str]:
    """A fresh schema in the local PostgreSQL server's ``test`` database, dropped afterwards,
    so test runs never see each other's rows. Yields a SQLAlchemy URL pinned to it."""
    import sqlalchemy as sa

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    errors = []
    for user in PG_USERS:
        base = PG_HOST_URL.format(user=user)
        try:
            admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        except sa.exc.OperationalError as exc:
            errors.append(str(exc).splitlines()[0])
            continue
        try:
            yield f"{base}?options=-csearch_path%3D{schema}"
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        return
    raise AssertionError(f"PostgreSQL on 127.0.0.1:5432 (database test) unreachable: {errors}")


@pytest.fixture(scope="session")
def pg_schema():
    """``pg_schema(prefix)``: a context manager yielding the URL of a fresh schema."""
    return pg_schema_url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> Iterator[str]:
    """Each test using this runs against embedded SQLite and the real PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        with pg_schema_url("t") as url:
            yield url
