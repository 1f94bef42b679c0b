#!/usr/bin/env bash
# `make test`: set up, train if needed, validate the data, lint, and run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --browser
PY=.venv/bin/python
$PY -m bot check
$PY -m bot train >/dev/null
$PY -m rasa data validate --config config.yml --domain domain.yml --data data >&2
$PY -m ruff check .
$PY -m pytest "$@"
