#!/usr/bin/env bash
# Set up and run every test: the fast default suite plus the slow science and browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Debian packages the tests use: chromium for the browser tests (Playwright cannot download
# its own browser here), docker-compose to validate the compose file, postgresql for the store
# suite (tests/server/postgres.py starts a throwaway server), docker.io and debootstrap for the
# lab check (scripts/lab-check.sh)
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$missing postgresql"
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 \
  || missing="$missing docker-compose"
command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || missing="$missing docker.io"
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing="$missing debootstrap"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq $missing >/dev/null
fi
.venv/bin/ruff check li2core li2cli server tests benchmarks scripts
# the image built and served by the real Docker engine, checked from outside (a few minutes)
bash scripts/lab-check.sh
# here a missing PostgreSQL is a failure, not a skip
export LI2_REQUIRE_POSTGRES=1
exec .venv/bin/pytest -m "slow or browser or not (slow or browser)" -p no:cacheprovider "$@"
