#!/usr/bin/env bash
# Set up a machine for Beacon: Python 3.10 venv with the locked dependencies, redis-server,
# and (with --browser) Debian's chromium for the console tests. Safe to run again: it only
# does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
want_browser=0
[[ "${1:-}" == "--browser" ]] && want_browser=1

say() { printf '[bootstrap] %s\n' "$*" >&2; }

find_python310() {
  # A pyenv shim may exist without the version being active, so each candidate is run.
  local candidate candidates=("${BEACON_PYTHON:-}")
  if command -v pyenv >/dev/null 2>&1; then
    candidates+=("$(pyenv root)"/versions/3.10*/bin/python3.10)
  fi
  candidates+=(python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10)
  for candidate in "${candidates[@]}"; do
    [[ -n "$candidate" ]] || continue
    if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; then
      command -v "$candidate"
      return
    fi
  done
  return 1
}

if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
  py=$(find_python310) || {
    say "error: Python 3.10 is needed (Rasa 3.6 supports 3.8-3.10)."
    say "Install it (e.g. 'pyenv install 3.10') or point BEACON_PYTHON at a python3.10."
    exit 1
  }
  say "creating $VENV with $py"
  rm -rf "$VENV"
  "$py" -m venv "$VENV"
fi

stamp="$VENV/.installed-$(sha256sum requirements.lock | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
  say "installing locked dependencies (first run takes a few minutes)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip==24.0 wheel
  # --no-deps: the lock file is the whole, exact set; pip must not resolve anything else.
  "$VENV/bin/python" -m pip install --quiet --no-deps -r requirements.lock
  "$VENV/bin/python" -m pip check >&2 || say "warning: pip check reports conflicts (see above)"
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi

apt_install() {
  if [[ $(id -u) -ne 0 ]]; then
    say "error: '$1' is missing. Install it with: sudo apt-get install $*"
    exit 1
  fi
  say "installing $* (Debian packages)"
  # The service scripts must not start a system-wide Redis on 6379: Beacon runs its own.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
  rm -f /usr/sbin/policy-rc.d
}

command -v redis-server >/dev/null 2>&1 || apt_install redis-server
if [[ $want_browser -eq 1 ]] && ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium
fi
say "ready"
