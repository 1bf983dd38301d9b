#!/usr/bin/env bash
# Set up and run every test: the fast default suite plus the slow science and browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v chromium >/dev/null 2>&1; then
  # browser tests drive Debian's chromium through Playwright (it cannot download its own here)
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/ruff check li2core server tests benchmarks scripts
exec .venv/bin/pytest -m "slow or browser or not (slow or browser)" -p no:cacheprovider "$@"
