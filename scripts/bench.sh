#!/usr/bin/env bash
# Measures POST /token against references measured in the same run, on loopback:
#   nginx answering a static JSON file of the same size (the floor of "an HTTP answer from memory"),
#   the gateway's GET /healthz (its own server floor), POST /token served from the cache (the product's hot path),
#   and POST /token that must refresh through the fake Salesforce (the miss path, single flight + lock + upstream).
# Also reports the gateway's resident memory before and after. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages wrk nginx-light
DURATION=${BENCH_DURATION:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-64}

say "building release binaries"
swift build -c release --product token-gateway >/dev/null
swift build -c release --product fake-salesforce >/dev/null
BIN=$(swift build -c release --show-bin-path)

WORK=$(mktemp -d /tmp/tgw-bench-XXXXXX)
trap 'stop_stack; [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null; rm -rf "$WORK"' EXIT
start_stack "$BIN" "$WORK" TOKEN_GATEWAY_LOG_LEVEL=warning TOKEN_GATEWAY_KEY_UPSTREAM_LIMIT_PER_MINUTE=1000000
seed_connection
curl -sf -H "Authorization: Bearer $KEY" -H "$J" "$GW/token" -d '{"client":"crm"}' >"$WORK/token.json"

# Reference: nginx serving the same token body from a file.
mkdir -p "$WORK/www"
cp "$WORK/token.json" "$WORK/www/token.json"
NGPORT=$(free_port)
cat >"$WORK/nginx.conf" <<NGINX
worker_processes 2; pid $WORK/nginx.pid; error_log $WORK/nginx.err; daemon on;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$NGPORT; root $WORK/www; location / { default_type application/json; } } }
NGINX
nginx -c "$WORK/nginx.conf"

post_script() {
    cat >"$WORK/$1.lua" <<LUA
wrk.method = "POST"
wrk.body = '$2'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
LUA
}
post_script hit '{"client":"crm"}'
post_script miss '{"client":"crm","min_ttl_seconds":86400}'

rss() { awk '/VmRSS/ {print $2" "$3}' "/proc/$GWPID/status"; }
RSS_IDLE=$(rss)
run() { # name, wrk args...
    local name=$1 out
    shift
    out="$WORK/run-$RANDOM.txt"
    local threads=2
    [ "$CONNECTIONS" -lt 2 ] && threads=1
    wrk -t"$threads" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" >"$out"
    local rps p50 p99 non2xx
    rps=$(awk '/Requests\/sec/ {print $2}' "$out")
    p50=$(awk '$1=="50%" {print $2}' "$out")
    p99=$(awk '$1=="99%" {print $2}' "$out")
    non2xx=$(awk '/Non-2xx/ {print $4}' "$out")
    printf '| %s | %s | %s | %s | %s |\n' "$name" "$rps" "$p50" "$p99" "${non2xx:-0}"
}
echo
echo "wrk -t2 -c$CONNECTIONS -d${DURATION}s on $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| target | req/s | p50 | p99 | non-2xx |"
echo "| --- | --- | --- | --- | --- |"
run "nginx static token.json (reference)" "http://127.0.0.1:$NGPORT/token.json"
run "gateway GET /healthz" "$GW/healthz"
run "gateway POST /token, cache hit" -s "$WORK/hit.lua" "$GW/token"
CONNECTIONS=1 run "gateway POST /token, cache hit, 1 connection (latency)" -s "$WORK/hit.lua" "$GW/token"
CONNECTIONS=1 run "nginx static token.json, 1 connection (latency)" "http://127.0.0.1:$NGPORT/token.json"
RSS_LOADED=$(rss)
CALLS_BEFORE=$(curl -sf "$FAKE/__fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token_calls"])')
wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/miss.lua" "$GW/token" >"$WORK/miss.txt"
CALLS_AFTER=$(curl -sf "$FAKE/__fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token_calls"])')
MISS_REQUESTS=$(awk '/requests in/ {print $1}' "$WORK/miss.txt")
printf '| %s | %s | %s | %s | %s |\n' "gateway POST /token, every call refreshes" \
    "$(awk '/Requests\/sec/ {print $2}' "$WORK/miss.txt")" "$(awk '$1=="50%" {print $2}' "$WORK/miss.txt")" \
    "$(awk '$1=="99%" {print $2}' "$WORK/miss.txt")" "$(awk '/Non-2xx/ {print $4}' "$WORK/miss.txt")"
echo
echo "refresh run: $MISS_REQUESTS requests caused $((CALLS_AFTER - CALLS_BEFORE)) Salesforce calls (single flight per connection)"
echo "gateway resident memory: $RSS_IDLE idle, $RSS_LOADED after the cache-hit run; nginx workers: $(ps -o rss= -C nginx | awk '{s+=$1} END {print s" kB"}')"
