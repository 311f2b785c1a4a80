"""Identifier formats shared by every router, and the error responses every route documents."""

from __future__ import annotations

import re
from typing import Any

from api.problems import Problem, problem_example

CITIZEN_ID_PATTERN = r"^\d{12}$"
COUNTER_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: problem_example(401, "unauthorized", "missing, unknown or revoked X-API-Key"),
    403: problem_example(403, "forbidden", "role 'reviewer' may not call this endpoint"),
}


def check_ids(citizen_id: str | None, counter_id: str | None) -> None:
    if citizen_id is not None and not re.fullmatch(CITIZEN_ID_PATTERN, citizen_id):
        raise Problem(422, "invalid_citizen_id", "citizen_id must be exactly 12 digits")
    if counter_id is not None and not re.fullmatch(COUNTER_ID_PATTERN, counter_id):
        raise Problem(
            422, "invalid_counter_id", "counter_id must be 1-64 characters of A-Z a-z 0-9 . _ : -"
        )
