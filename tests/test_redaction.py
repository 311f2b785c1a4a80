"""Citizen ids and API keys never reach the logs (issue 12)."""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError
from uvicorn.logging import AccessFormatter

from api import redaction
from biometric.store.db import make_engine

TOKEN = "bmk_0a1b2c3d4e5f_s3cr3t-Value_x"


def _record(name: str, msg: str, args: tuple, exc_info=None) -> logging.LogRecord:
    return logging.getLogRecordFactory()(name, logging.INFO, __file__, 1, msg, args, exc_info)


def test_access_and_error_logs_are_redacted() -> None:
    redaction.install()
    redaction.install()  # idempotent
    path = f"/v1/claimants/123456789012?citizen_id=012345678901&api_key={TOKEN}"
    access = _record(
        "uvicorn.access", '%s - "%s %s HTTP/%s" %d', ("1.2.3.4:5", "GET", path, "1.1", 200)
    )
    line = AccessFormatter('%(client_addr)s "%(request_line)s" %(status_code)s').format(access)
    assert "123456789012" not in line and "012345678901" not in line and "s3cr3t" not in line
    assert "/v1/claimants/[citizen-id]" in line

    try:
        raise IntegrityError(
            "INSERT INTO claimants",
            None,
            Exception("Key (citizen_id)=(123456789012) already exists."),
        )
    except IntegrityError:
        import sys

        error = _record("biometric.api", "unhandled error (key %s)", (TOKEN,), sys.exc_info())
    text = logging.Formatter().format(error)
    assert "123456789012" not in text and "s3cr3t" not in text and "already exists" in text


def test_sql_errors_never_quote_parameters(tmp_path) -> None:
    assert make_engine(f"sqlite:///{tmp_path / 'x.db'}").hide_parameters
