.PHONY: run test lock bench

# Set up (venv, locked dependencies, redis-server), start Redis, train if needed, run Beacon.
run:
	bash scripts/run.sh

# Set up, train if needed, validate the data, lint, run the tests.
test:
	bash scripts/test.sh

# Rebuild requirements.lock from requirements.in in a fresh Python 3.10 venv.
lock:
	rm -rf .venv-lock && $$(ls -d $$(pyenv root)/versions/3.10*/bin/python3.10 | head -1) -m venv .venv-lock
	.venv-lock/bin/pip install -q -r requirements.in
	.venv-lock/bin/pip freeze --exclude-editable > requirements.lock && rm -rf .venv-lock

bench:
	.venv/bin/python bench/triage.py
