"""Command line for the HTTP service: ``biometric serve`` and ``biometric keys ...``.

Added to the ``biometric`` command through the ``biometric.commands`` entry point
(pyproject.toml), so the library never imports this module.

Heavy imports (uvicorn, SQLAlchemy, the app) happen inside the commands, so ``biometric --help``
stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from biometric.console import err, fail

keys_app = typer.Typer(help="Manage API keys (tokens are shown once).", no_args_is_help=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        help="Database URL [env BIOMETRIC_DATABASE_URL; default SQLite var/biometric.db]."
    ),
]


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    database_url: DatabaseUrl = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    healthcheck_timeout: Annotated[
        int, typer.Option(help="Seconds a worker may take to answer the supervisor (model load).")
    ] = 60,
    operating_point: Annotated[Path | None, typer.Option(
        "--operating-point",
        help="A site's operating point from `biometric calibrate` (default: the shipped one) "
             "[env BIOMETRIC_OPERATING_POINT].")] = None,
) -> None:
    """Run the verification HTTP service (uvicorn, app factory api.app:create_app)."""
    from api.server import run
    from api.settings import Settings, trust_store_warning
    from biometric.console import guard
    from biometric.operating_point import load_operating_point
    from biometric.store.db import make_engine, migrate

    # The command line over the environment, handed to every worker as one object.
    options = {"database_url": database_url,
               "operating_point": operating_point.resolve() if operating_point else None}
    settings = Settings(**{k: v for k, v in options.items() if v is not None})
    if settings.operating_point is not None:
        guard(lambda: load_operating_point(settings.operating_point))  # a bad file fails here
    engine = make_engine(settings.database_url)
    migrate(engine)  # once, before the workers start
    engine.dispose()
    warning = trust_store_warning(settings)
    if warning:
        err.print(f"[bold black on yellow] WARNING [/] [bold yellow]{warning}[/]", highlight=False)
    run(host, port, workers, log_level, healthcheck_timeout=healthcheck_timeout,
        settings=settings)


def _sessions(database_url: str | None):  # type: ignore[no-untyped-def]
    from biometric.store.db import make_engine, migrate, session_factory

    engine = make_engine(database_url)
    migrate(engine)
    return session_factory(engine)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Unique key name, e.g. office-17-desk-3.")],
    role: Annotated[str, typer.Option(help="counter, reviewer or admin.")] = "counter",
    database_url: DatabaseUrl = None,
) -> None:
    """Create a key and print its token (only now: it is stored hashed)."""
    from biometric.store.keys import KeyStoreError, create_key
    from biometric.store.models import Role

    if role not in {r.value for r in Role}:
        fail("invalid_role", f"role must be one of {', '.join(r.value for r in Role)}")
    with _sessions(database_url)() as s:
        try:
            key, token = create_key(s, name, role)
        except KeyStoreError as exc:
            fail("key_store", str(exc))
    typer.echo(token)
    typer.echo(f"created key {key.name!r} (role {key.role}); store the token now", err=True)


@keys_app.command("list")
def keys_list(database_url: DatabaseUrl = None) -> None:
    """List keys (never the tokens)."""
    from biometric.store.keys import list_keys

    with _sessions(database_url)() as s:
        for k in list_keys(s):
            state = f"revoked {k.revoked_at.isoformat()}" if k.revoked_at else "active"
            typer.echo(f"{k.name}\t{k.role}\t{k.created_at.isoformat()}\t{state}")


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="Key name.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a key; requests with it get 401 from then on."""
    from biometric.store.keys import KeyStoreError, revoke_key

    with _sessions(database_url)() as s:
        try:
            key = revoke_key(s, name)
        except KeyStoreError as exc:
            fail("key_store", str(exc))
    typer.echo(f"revoked {key.name}")


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``keys`` to the main ``biometric`` CLI."""
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")


# Standalone: python -m api.cli serve | keys ...
app = typer.Typer(
    help="biometric HTTP service.", no_args_is_help=True, pretty_exceptions_enable=False
)
register(app)

if __name__ == "__main__":
    app()
