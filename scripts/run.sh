#!/usr/bin/env bash
# Runs the gateway on a fresh machine: installs what is missing, initialises and starts a local PostgreSQL under
# the data folder (default .data/ in the checkout), makes a development admin token and encryption key once,
# builds, migrates and serves on TOKEN_GATEWAY_LISTEN (default 127.0.0.1:8080). Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_packages
DATA=${TOKEN_GATEWAY_DATA_DIR:-$PWD/.data}
mkdir -p "$DATA"
if ! postgres_can_reach "$DATA"; then
    fallback=/var/tmp/token-gateway-$(printf '%s' "$PWD" | sha256sum | cut -c1-12)
    say "the postgres user cannot enter $DATA (a parent folder is private, e.g. /root);"
    say "keeping the database in $fallback instead (set TOKEN_GATEWAY_DATA_DIR to choose)"
    DATA=$fallback
    mkdir -p "$DATA"
fi
PGDIR="$DATA/postgres"
ENVFILE="$DATA/dev.env"
if [ ! -f "$ENVFILE" ]; then
    say "first run: generating a development admin token and encryption key in $ENVFILE"
    swift build --product token-gateway >/dev/null
    {
        echo "TOKEN_GATEWAY_ADMIN_TOKEN=dev-$(python3 -c "import secrets; print(secrets.token_hex(24))")"
        echo "TOKEN_GATEWAY_ENCRYPTION_KEYS=$(.build/debug/token-gateway keygen --id dev1)"
        echo "PGPORT_DEV=$(free_port)"
    } >"$ENVFILE"
    chmod 600 "$ENVFILE"
fi
# shellcheck disable=SC1090
source "$ENVFILE"
if [ ! -d "$PGDIR/data" ]; then
    say "initialising PostgreSQL in $PGDIR"
    pg_init "$PGDIR"
fi
pg_start "$PGDIR" "$PGPORT_DEV" || { say "PostgreSQL did not start; see $PGDIR/server.log"; exit 1; }
trap 'pg_stop "$PGDIR"' EXIT
psql -h 127.0.0.1 -p "$PGPORT_DEV" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='token_gateway'" | grep -q 1 ||
    psql -h 127.0.0.1 -p "$PGPORT_DEV" -U postgres -qc "CREATE DATABASE token_gateway"

say "building"
swift build --product token-gateway
export DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT_DEV/token_gateway?sslmode=disable"
export TOKEN_GATEWAY_ADMIN_TOKEN TOKEN_GATEWAY_ENCRYPTION_KEYS
export TOKEN_GATEWAY_LISTEN=${TOKEN_GATEWAY_LISTEN:-127.0.0.1:8080}
export TOKEN_GATEWAY_PUBLIC_URL=${TOKEN_GATEWAY_PUBLIC_URL:-http://${TOKEN_GATEWAY_LISTEN}}
export TOKEN_GATEWAY_LOG_FORMAT=${TOKEN_GATEWAY_LOG_FORMAT:-text}
cat >&2 <<INFO
==> token-gateway (development)
    API          http://$TOKEN_GATEWAY_LISTEN   (try: curl http://$TOKEN_GATEWAY_LISTEN/healthz)
    admin token  $TOKEN_GATEWAY_ADMIN_TOKEN
    settings     $ENVFILE
    database     $DATABASE_URL   (data and log in $PGDIR)
    Ctrl-C stops the gateway and PostgreSQL.
INFO
.build/debug/token-gateway serve &
gateway=$!
trap 'kill -TERM $gateway 2>/dev/null || true; wait $gateway 2>/dev/null || true; pg_stop "$PGDIR"' EXIT
trap 'exit 130' INT TERM
status=0
wait $gateway || status=$?
exit $status
