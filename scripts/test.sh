#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, starts a throwaway PostgreSQL on a free
# loopback port (removed on exit), builds, runs every Swift test, then the doc-comment, openapi.yaml, Docker and
# alert-rule checks.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_packages
PGTMP=$(mktemp -d /tmp/tgw-test-pg-XXXXXX)
cleanup() { pg_stop "$PGTMP"; rm -rf "$PGTMP"; }
trap cleanup EXIT
PORT=$(free_port)
say "throwaway PostgreSQL in $PGTMP on 127.0.0.1:$PORT"
pg_init "$PGTMP"
pg_start "$PGTMP" "$PORT" -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300
export TOKEN_GATEWAY_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$PORT/postgres?sslmode=disable"

say "building"
swift build --build-tests
# One test at a time: several suites measure wall-clock behaviour (timeouts, a pool that must not stall) and
# the end-to-end tests start whole gateways; on 2 cores they would disturb each other. The run takes ~30 s.
say "running the Swift tests"
set +e
swift test --skip-build --no-parallel 2>&1 | tee "$PGTMP/swift-test.log"
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || { say "swift test failed ($status)"; exit "$status"; }

say "checking the /// comments of public declarations"
bash scripts/check-docs.sh
say "checking openapi.yaml"
bash scripts/check-openapi.sh
say "fuzzing the gateway against openapi.yaml"
bash scripts/check-conformance.sh
say "checking the Docker files"
bash scripts/check-docker.sh
say "checking the Prometheus alert rules"
bash scripts/check-alerts.sh
say "all checks passed"
count=$(grep -oE "Test run with [0-9]+ tests" "$PGTMP/swift-test.log" | tail -1 | grep -oE "[0-9]+")
echo "tests: ${count:-0} passed, 0 failed"
