#!/usr/bin/env bash
# Measures the gateway against references measured in the same run, on loopback. Prints Markdown tables.
#   Case "wrk": rounds of wrk -t2, interleaved (nginx, healthz, hit, nginx -c1, hit -c1 in every round), medians and
#   ratios to nginx `return 200` with the same body (nginx-light, access log off); then the refresh (miss) path.
#   Case "callgrind": instructions and malloc calls per POST /token cache hit, counted by valgrind's callgrind on a
#   second gateway replica of the same stack: a run with BENCH_HITS more hits than another, divided by BENCH_HITS,
#   so start-up and the first (miss) request cancel out. libmicrohttpd's pool zeroing (memset called from it) is
#   reported apart.
#   Cases "burst" and "hanging": the refresh engine (scripts/bench_refresh.py, a small asyncio driver): a cold burst
#   of many connections at a given Salesforce latency, and a client whose Salesforce hangs past the upstream timeout.
# BENCH_CASES picks the cases (default "wrk callgrind burst hanging"); BENCH_DURATION (s per wrk run, default 5),
# BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default 64), BENCH_HITS (default 20000) shape the first two;
# BENCH_KEEP names a folder that keeps the callgrind files (for callgrind_annotate);
# BENCH_BIN names a prebuilt token-gateway (or the folder holding it and fake-salesforce) instead of building;
# BENCH_BURST_SIZES, BENCH_BURST_LATENCIES, BENCH_BURST_PER_CLIENT, BENCH_BURST_REPEAT, BENCH_HANG_REQUESTS,
# BENCH_HANG_WINDOW shape the last two.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages wrk nginx-light valgrind
DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
HITS=${BENCH_HITS:-20000}
CASES=" ${BENCH_CASES:-wrk callgrind burst hanging} "

if [ -n "${BENCH_BIN:-}" ]; then
    BIN=$BENCH_BIN
    [ -f "$BIN" ] && BIN=$(dirname "$BIN")
    say "using prebuilt binaries in $BIN"
else
    say "building release binaries"
    swift build -c release --product token-gateway >/dev/null
    swift build -c release --product fake-salesforce >/dev/null
    BIN=$(swift build -c release --show-bin-path)
fi

WORK=$(mktemp -d /tmp/tgw-bench-XXXXXX)
CG_PID=
cleanup() {
    [ -n "$CG_PID" ] && kill -KILL "$CG_PID" 2>/dev/null
    stop_stack
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
# A 5 s upstream timeout (default 15) keeps the hanging-org case short; no other case comes near it.
start_stack "$BIN" "$WORK" TOKEN_GATEWAY_LOG_LEVEL=warning TOKEN_GATEWAY_KEY_UPSTREAM_LIMIT_PER_MINUTE=1000000 \
    TOKEN_GATEWAY_UPSTREAM_TIMEOUT_SECONDS=5
seed_connection
curl -sf -H "Authorization: Bearer $KEY" -H "$J" "$GW/token" -d '{"client":"crm"}' >"$WORK/token.json"

if [[ $CASES == *" wrk "* ]]; then
    # Reference: nginx answering `return 200` with the same body from memory, access log off.
    NGPORT=$(free_port)
    BODY=$(cat "$WORK/token.json")
    cat >"$WORK/nginx.conf" <<NGINX
worker_processes 2; pid $WORK/nginx.pid; error_log $WORK/nginx.err; daemon on;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$NGPORT; location / { default_type application/json; return 200 '$BODY'; } } }
NGINX
    nginx -c "$WORK/nginx.conf"
    curl -sf "http://127.0.0.1:$NGPORT/" | cmp -s - "$WORK/token.json" || { say "nginx does not answer the token body"; exit 1; }

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
    ms() { # a wrk latency (12.3us, 1.2ms, 1.1s) in milliseconds
        awk -v t="$1" 'BEGIN { v = t + 0; if (t ~ /us$/) v /= 1000; else if (t ~ /ms$/) v += 0; else if (t ~ /s$/) v *= 1000; printf "%.3f", v }'
    }
    run() { # name, connections, wrk args...: one tab-separated line into $WORK/rounds.tsv
        local name=$1 connections=$2 out threads=2
        shift 2
        out="$WORK/run.txt"
        [ "$connections" -lt 2 ] && threads=1
        wrk -t"$threads" -c"$connections" -d"${DURATION}s" --latency "$@" >"$out"
        printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$(awk '/Requests\/sec/ {print $2}' "$out")" \
            "$(ms "$(awk '$1=="50%" {print $2}' "$out")")" "$(ms "$(awk '$1=="99%" {print $2}' "$out")")" \
            "$(awk '/Non-2xx/ {n=$5} END {print n+0}' "$out")" >>"$WORK/rounds.tsv"
    }
    say "wrk: $ROUNDS interleaved rounds of ${DURATION}s runs"
    for round in $(seq "$ROUNDS"); do
        run "nginx return 200" "$CONNECTIONS" "http://127.0.0.1:$NGPORT/"
        run "gateway GET /healthz" "$CONNECTIONS" "$GW/healthz"
        run "gateway POST /token, cache hit" "$CONNECTIONS" -s "$WORK/hit.lua" "$GW/token"
        run "nginx return 200, 1 connection" 1 "http://127.0.0.1:$NGPORT/"
        run "gateway POST /token, cache hit, 1 connection" 1 -s "$WORK/hit.lua" "$GW/token"
        say "round $round done"
    done
    RSS_LOADED=$(rss)
    echo
    echo "wrk -t2 -c$CONNECTIONS (and -t1 -c1) -d${DURATION}s, $ROUNDS interleaved rounds, medians; $(nproc) cores," \
        "load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%MZ)"
    echo
    python3 scripts/bench_hits.py medians "$WORK/rounds.tsv"
    token_calls() {
        curl -sf "$FAKE/__fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token_calls"])'
    }
    CALLS_BEFORE=$(token_calls)
    wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/miss.lua" "$GW/token" >"$WORK/miss.txt"
    CALLS_AFTER=$(token_calls)
    MISS_REQUESTS=$(awk '/requests in/ {print $1}' "$WORK/miss.txt")
    echo
    echo "| gateway POST /token, every call refreshes (one run) | req/s | p50 | p99 | non-2xx |"
    echo "| --- | --- | --- | --- | --- |"
    printf '| %s | %s | %s | %s | %s |\n' "refresh" \
        "$(awk '/Requests\/sec/ {print $2}' "$WORK/miss.txt")" "$(awk '$1=="50%" {print $2}' "$WORK/miss.txt")" \
        "$(awk '$1=="99%" {print $2}' "$WORK/miss.txt")" "$(awk '/Non-2xx/ {n=$5} END {print n+0}' "$WORK/miss.txt")"
    echo
    echo "refresh run: $MISS_REQUESTS requests caused $((CALLS_AFTER - CALLS_BEFORE)) Salesforce calls (single flight per connection)"
    echo "gateway resident memory: $RSS_IDLE idle, $RSS_LOADED after the cache-hit runs; nginx workers: $(ps -o rss= -C nginx | awk '{s+=$1} END {print s" kB"}')"
fi

if [[ $CASES == *" callgrind "* ]]; then
    # valgrind 3.19 cannot read the DWARF 5 that Swift 6 emits: profile a copy without debug information.
    objcopy --strip-debug "$BIN/token-gateway" "$WORK/token-gateway-nodebug"
    # ... and it dies in libdispatch's signal thread's sigsuspend: a preloaded stand-in (scripts/valgrind-sigsuspend.c).
    cc -shared -fPIC -O2 -o "$WORK/sigsuspend.so" scripts/valgrind-sigsuspend.c
    profile_hits() { # extra hits after a warm-up of 200 -> "total memset_in_mhd mallocs" in $WORK/cg-$1.txt
        local hits=$1 port
        port=$(free_port)
        env "${STACK_GATEWAY_ENV[@]}" TOKEN_GATEWAY_LISTEN="127.0.0.1:$port" TOKEN_GATEWAY_PUBLIC_URL="$GW" \
            TOKEN_GATEWAY_LOG_LEVEL=warning LD_PRELOAD="$WORK/sigsuspend.so" valgrind --tool=callgrind --callgrind-out-file="$WORK/cg-$hits.out" \
            "$WORK/token-gateway-nodebug" serve >"$WORK/cg-$hits.log" 2>&1 &
        CG_PID=$!
        for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
        curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$WORK/cg-$hits.log" >&2; return 1; }
        python3 scripts/bench_hits.py send "http://127.0.0.1:$port" "$KEY" 200
        [ "$hits" -gt 0 ] && python3 scripts/bench_hits.py send "http://127.0.0.1:$port" "$KEY" "$hits"
        kill -TERM "$CG_PID"
        wait "$CG_PID" || { cat "$WORK/cg-$hits.log" >&2; return 1; }
        CG_PID=
        python3 scripts/bench_hits.py profile "$WORK/cg-$hits.out" >"$WORK/cg-$hits.txt"
        if [ -n "${BENCH_KEEP:-}" ]; then mkdir -p "$BENCH_KEEP" && cp "$WORK/cg-$hits.out" "$BENCH_KEEP/"; fi
    }
    say "callgrind: a replica under valgrind, 200 warm-up hits, then 0 and $HITS more"
    profile_hits 0
    profile_hits "$HITS"
    echo
    echo "callgrind, POST /token cache hits over one keep-alive connection: (run with $HITS more hits - run with 0) / $HITS"
    echo
    echo "| per hit | |"
    echo "| --- | --- |"
    python3 scripts/bench_hits.py summary "$WORK/cg-0.txt" "$WORK/cg-$HITS.txt" "$HITS"
fi

cases=()
for case in burst hanging; do
    if [[ $CASES == *" $case "* ]]; then cases+=("$case"); fi
done
if [ ${#cases[@]} -gt 0 ]; then
    GW=$GW FAKE=$FAKE ADMIN=$ADMIN KEY=$KEY python3 scripts/bench_refresh.py "${cases[@]}"
fi
