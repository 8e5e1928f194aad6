#!/usr/bin/env bash
# Fuzzes the running gateway against openapi.yaml with schemathesis (pinned version, fixed seed): every response
# must match the documented status codes, media types and schemas, and the process must survive every input.
# Runs against the debug binaries `make test` has just built, a throwaway PostgreSQL and the fake Salesforce.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
SCHEMATHESIS_VERSION=4.32.5
if ! python3 -m pip show schemathesis 2>/dev/null | grep -q "^Version: $SCHEMATHESIS_VERSION$"; then
    say "installing schemathesis $SCHEMATHESIS_VERSION from PyPI"
    python3 -m pip install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
BIN=$(swift build --show-bin-path)
[ -x "$BIN/token-gateway" ] && [ -x "$BIN/fake-salesforce" ] || swift build
WORK=$(mktemp -d /tmp/tgw-conformance-XXXXXX)
trap 'stop_stack; rm -rf "$WORK"' EXIT
start_stack "$BIN" "$WORK" TOKEN_GATEWAY_LOG_LEVEL=error
seed_connection
# Checks left out on purpose: positive_data_acceptance / negative_data_rejection (the gateway validates more
# strictly than a schema can say, e.g. per-grant client fields), missing_required_header and ignored_auth
# (authorization is documented per operation but schemathesis probes public routes too), unsupported_method
# (405 is documented once, globally).
python3 -m schemathesis.cli run openapi.yaml --url "$GW" -H "Authorization: Bearer $ADMIN" \
    --max-examples "${CONFORMANCE_EXAMPLES:-40}" --seed 20261129 --workers 1 --checks all \
    --exclude-checks positive_data_acceptance,negative_data_rejection,missing_required_header,ignored_auth,unsupported_method \
    >"$WORK/schemathesis.txt" 2>&1 || { cat "$WORK/schemathesis.txt"; exit 1; }
tail -n 4 "$WORK/schemathesis.txt"
curl -sf "$GW/healthz" >/dev/null || { say "the gateway did not survive the fuzzing"; cat "$WORK/gateway.log"; exit 1; }
say "conformance: every response matched openapi.yaml and the gateway is still serving"
