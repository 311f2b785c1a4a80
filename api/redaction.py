"""Keep citizen ids and API keys out of the logs: access lines (paths, query strings), error
lines and the tracebacks of database errors (whose driver messages quote key values).

Installed once per process as a log record factory, so it covers records of every logger it
names whichever handler ends up writing them (uvicorn's, the root's or logging's last resort).
SQL parameters are kept out at the source: engines are made with ``hide_parameters``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

# Twelve digits in a row (any script: \d), not part of a longer number: a citizen id.
_CITIZEN_ID = re.compile(r"(?<!\d)\d{12}(?!\d)")
_API_TOKEN = re.compile(r"bmk_[A-Za-z0-9]+_[A-Za-z0-9_-]+")
_SECRET_PARAM = re.compile(r"((?:x-)?(?:api[_-]?key|token|key|secret)=)[^&\s\"']+", re.IGNORECASE)
_LOGGERS = ("uvicorn", "biometric", "api", "sqlalchemy", "fastapi", "starlette")


def redact(text: str) -> str:
    text = _API_TOKEN.sub("bmk_[redacted]", text)
    text = _SECRET_PARAM.sub(r"\1[redacted]", text)
    return _CITIZEN_ID.sub("[citizen-id]", text)


def _redact_record(record: logging.LogRecord) -> None:
    if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
        # uvicorn's access formatter unpacks these five arguments: redact the path in place.
        client, method, path, version, status = record.args
        record.args = (client, method, redact(str(path)), version, status)
    else:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return  # a malformed call: logging reports it when it formats the record
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))


def install() -> None:
    """Redact records of the service's loggers from now on (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name.split(".", 1)[0] in _LOGGERS:
            _redact_record(record)
        return record

    factory.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
