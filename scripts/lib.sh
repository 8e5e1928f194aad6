# Shared helpers of the project's scripts: install what a fresh Debian machine lacks, run a throwaway PostgreSQL.
# shellcheck shell=bash

PG_BIN=/usr/lib/postgresql/15/bin
NEEDED_PACKAGES=(pkg-config libmicrohttpd-dev libpq-dev libcurl4-openssl-dev postgresql-15 postgresql-client-15 ca-certificates)

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
