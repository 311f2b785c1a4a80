"""Schemathesis fuzzes a real server from its OpenAPI document, once per API key role (issue
12): no answer may be a 5xx, break its documented schema, or carry an undocumented status or
content type. Bounded in time (FUZZ_SECONDS per role) and seeded, so CI stays short and a
failure can be replayed. "Valid request rejected" (positive_data_acceptance) is not checked:
a schema cannot say which bytes are a face photo, so generated images are rightly refused."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from api.launcher import running_server
from biometric.store.db import make_engine, migrate, session_factory
from biometric.store.keys import create_key

FUZZ_SECONDS = 15
# Every check but positive_data_acceptance (below): response schema, status code, content type
# and headers as documented, schema-violating requests refused (a number given as a date-time
# was answered 200, issue 21), authentication never ignored, no use after erasure.
CHECKS = "all"
EXCLUDED = "positive_data_acceptance"


def test_fuzzing_every_role_finds_no_server_error(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'fuzz.db'}"
    engine = make_engine(db_url)
    migrate(engine)
    with session_factory(engine)() as s:
        tokens = {
            role: create_key(s, f"fuzz-{role}", role)[1]
            for role in ("counter", "reviewer", "admin")
        }
    engine.dispose()
    env = {
        "BIOMETRIC_DATABASE_URL": db_url,
        "BIOMETRIC_INDEX_DIR": str(tmp_path / "index"),
        "BIOMETRIC_THREAD_POOL_SIZE": "2",
        # schemathesis's missing- and wrong-key checks would otherwise meet 429s
        "BIOMETRIC_AUTH_FAILURE_LIMIT": "1000000",
        "BIOMETRIC_AUDIT_KEY_FILE": str(tmp_path / "audit.key"),
        "BIOMETRIC_AUDIT_CHECKPOINTS": str(tmp_path / "checkpoints.jsonl"),
    }
    from biometric.store.audit import generate_key

    generate_key(tmp_path / "audit.key")
    summary = {}
    with running_server(env) as url:
        for role, token in tokens.items():
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "schemathesis.cli",
                    "run",
                    f"{url}/openapi.json",
                    "--header",
                    f"X-API-Key: {token}",
                    "--checks",
                    CHECKS,
                    "--exclude-checks",
                    EXCLUDED,
                    "--max-time",
                    str(FUZZ_SECONDS),
                    "--seed",
                    "12",
                    "--workers",
                    "1",
                    "--generation-database",
                    "none",
                    "--report-dir",
                    str(tmp_path / f"report-{role}"),
                    "--no-color",
                ],
                capture_output=True,
                text=True,
                cwd=tmp_path,
                timeout=FUZZ_SECONDS * 4 + 60,
            )
            generated = re.search(r"(\d+) generated", run.stdout)
            summary[role] = (run.returncode, generated and int(generated.group(1)))
            assert run.returncode == 0, run.stdout[-8000:]
    print(f"\nschemathesis (exit code, test cases) per role: {summary}")
    assert all(n for _, n in summary.values())
