# Shared helpers of the project's scripts: install what a fresh Debian machine lacks, run a throwaway PostgreSQL.
# shellcheck shell=bash

PG_BIN=/usr/lib/postgresql/15/bin
NEEDED_PACKAGES=(pkg-config libmicrohttpd-dev libpq-dev libcurl4-openssl-dev postgresql-15 postgresql-client-15 ca-certificates openssl)

say() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        say "need root to run: $*"; return 1
    fi
}

# Installs the Debian packages the build and the tests need, once.
ensure_packages() {
    local missing=()
    for package in "${NEEDED_PACKAGES[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]}"
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    command -v swift >/dev/null || { say "swift is not on PATH (expected a Swift 6 toolchain, e.g. /opt/swift/usr/bin)"; return 1; }
}

# Runs a PostgreSQL tool as the postgres user when we are root (PostgreSQL refuses to run as root).
pg_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# pg_init DIR: a new cluster in DIR (owned by postgres, mode 700) with trust auth on loopback.
pg_init() {
    local dir=$1
    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir"; fi
    chmod 700 "$dir"
    pg_as_owner "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; return 1; }
}

# pg_start DIR PORT [extra server options]
pg_start() {
    local dir=$1 port=$2
    shift 2
    pg_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 $*" start >/dev/null ||
        { cat "$dir/server.log" >&2; return 1; }
}

pg_stop() {
    local dir=$1
    [ -f "$dir/data/postmaster.pid" ] || return 0
    pg_as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -w -t 60 -m fast stop >/dev/null 2>&1 || true
}

# True when the postgres user can enter DIR's parent chain (a checkout under /root cannot be used).
postgres_can_reach() {
    local dir=$1
    if [ "$(id -u)" -ne 0 ]; then return 0; fi
    runuser -u postgres -- test -x "$dir"
}

# start_stack BIN WORK [VAR=value ...]: a throwaway PostgreSQL, the fake Salesforce and the gateway on loopback.
# Sets FAKE, GW, GWPID, ADMIN, J, A; stop_stack ends them all.
STACK_PIDS=()
start_stack() {
    local bin=$1 work=$2
    shift 2
    STACK_WORK=$work
    chmod 711 "$work"  # the postgres user must be able to enter it to reach its cluster folder
    local pgport
    pgport=$(free_port)
    pg_init "$work/pg"
    pg_start "$work/pg" "$pgport" -c fsync=off
    "$bin/fake-salesforce" --host 127.0.0.1 --port 0 >"$work/fake.out" 2>"$work/fake.log" &
    STACK_PIDS+=($!)
    for _ in $(seq 100); do grep -q listening "$work/fake.out" && break; sleep 0.1; done
    FAKE=$(awk '/listening/ {print $2}' "$work/fake.out")
    local gwport
    gwport=$(free_port)
    ADMIN=demo-admin-token-$(python3 -c "import secrets; print(secrets.token_hex(16))")
    GW=http://127.0.0.1:$gwport
    # The gateway's settings without its address, so a second replica can join the same stack (bench.sh does).
    STACK_GATEWAY_ENV=(DATABASE_URL="postgresql://postgres@127.0.0.1:$pgport/postgres?sslmode=disable"
        TOKEN_GATEWAY_ADMIN_TOKEN="$ADMIN" TOKEN_GATEWAY_ENCRYPTION_KEYS="$("$bin/token-gateway" keygen --id demo1)"
        TOKEN_GATEWAY_UPSTREAM_ALLOWLIST="$FAKE" "$@")
    env "${STACK_GATEWAY_ENV[@]}" TOKEN_GATEWAY_LISTEN="127.0.0.1:$gwport" TOKEN_GATEWAY_PUBLIC_URL="$GW" \
        "$bin/token-gateway" serve 2>"$work/gateway.log" &
    GWPID=$!
    STACK_PIDS+=($GWPID)
    for _ in $(seq 100); do curl -sf "$GW/healthz" >/dev/null && break; sleep 0.1; done
    curl -sf "$GW/healthz" >/dev/null || { cat "$work/gateway.log" >&2; return 1; }
    J="Content-Type: application/json"
    A="Authorization: Bearer $ADMIN"
}

stop_stack() {
    local pid
    for pid in "${STACK_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${STACK_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ -n "${STACK_WORK:-}" ] && pg_stop "$STACK_WORK/pg"
}

# seed_connection: a tenant "bench" with key KEY, an app at the fake and an authorized client "crm".
seed_connection() {
    curl -sf -H "$J" "$FAKE/__fake/apps" \
        -d '{"client_id":"3MVG9-demo","client_secret":"demo-secret","redirect_uris":["https://app.example/cb"],"scopes":"api refresh_token"}' >/dev/null
    curl -sf -H "$J" "$FAKE/__fake/users" -d '{"username":"ops@example.com","active":true}' >/dev/null
    curl -sf -H "$A" -H "$J" "$GW/tenants" -d '{"id":"bench"}' >/dev/null
    KEY=$(curl -sf -H "$A" -H "$J" "$GW/tenants/bench/keys" -d '{"name":"bench"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
    curl -sf -H "$A" -H "$J" "$GW/tenants/bench/clients" -d "{\"id\":\"crm\",\"grant_type\":\"authorization_code\",
        \"login_url\":\"$FAKE\",\"client_id\":\"3MVG9-demo\",\"client_secret\":\"demo-secret\",\"redirect_uri\":\"https://app.example/cb\"}" >/dev/null
    local code
    code=$(curl -sf -H "$J" "$FAKE/__fake/codes" -d '{"client_id":"3MVG9-demo","redirect_uri":"https://app.example/cb","username":"ops@example.com"}' |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])')
    curl -sf -H "Authorization: Bearer $KEY" -H "$J" "$GW/exchange" -d "{\"client\":\"crm\",\"code\":\"$code\"}" >/dev/null
}
