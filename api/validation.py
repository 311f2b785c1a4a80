"""Identifier formats shared by every router, and the error responses every route documents."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

from api.problems import Problem, problem_example
from biometric.gallery.service import CITIZEN_ID_PATTERN

COUNTER_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"

# Largest id a request may name: ids and change numbers are 32-bit integer columns on
# PostgreSQL (SQLite's are 64-bit); larger values are 422, not a database overflow.
DB_ID_MAX = 2**31 - 1

# Times a query may name: the audit trail starts after 1970, and a bound below year 9999 keeps
# every UTC offset representable (9999-12-31T23:59-05:00 is in year 10000 in UTC).
TIME_MIN = datetime(1970, 1, 1, tzinfo=UTC)
TIME_MAX = datetime(9999, 1, 1, tzinfo=UTC)


def _bounded_time(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        utc = None
    if utc is None or not TIME_MIN <= utc < TIME_MAX:
        raise ValueError(
            f"time must be from {TIME_MIN.isoformat()} to before {TIME_MAX.isoformat()}"
        )
    return utc


# ISO 8601 dates and date-times only, as documented (format: date-time): pydantic would also
# take a bare number as Unix seconds (schemathesis: `until=0.5` answered 200).
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}([T ].*)?$")


def _iso_only(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_TIME.match(value):
        raise ValueError("time must be an ISO 8601 date or date-time, e.g. 2026-12-02T10:00:00Z")
    return value


QueryTime = Annotated[datetime, BeforeValidator(_iso_only), AfterValidator(_bounded_time)]

# Documented on every /v1 operation (FastAPI's own 422 says application/json; ours is a
# problem document like every other error).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: problem_example(400, "bad_request", "There was an error parsing the body"),
    401: problem_example(401, "unauthorized", "missing, unknown or revoked X-API-Key"),
    403: problem_example(403, "forbidden", "role 'reviewer' may not call this endpoint"),
    422: problem_example(422, "validation_error", "the request is not valid"),
    429: problem_example(
        429, "too_many_failed_authentications", "too many failed authentications; retry in 41 s"
    ),
    503: problem_example(503, "audit_unavailable", "the request could not be recorded"),
}
UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: problem_example(413, "body_too_large", "request body exceeds the limit"),
    415: problem_example(415, "unsupported_image_type", "not a recognised image format"),
}


def check_ids(citizen_id: str | None, counter_id: str | None) -> None:
    if citizen_id is not None and not re.fullmatch(CITIZEN_ID_PATTERN, citizen_id):
        raise Problem(422, "invalid_citizen_id", "citizen_id must be exactly 12 digits")
    if counter_id is not None and not re.fullmatch(COUNTER_ID_PATTERN, counter_id):
        raise Problem(
            422, "invalid_counter_id", "counter_id must be 1-64 characters of A-Z a-z 0-9 . _ : -"
        )
