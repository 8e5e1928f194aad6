#!/usr/bin/env bash
# Measures POST /token against references measured in the same run, on loopback:
#   nginx answering a static JSON file of the same size (the floor of "an HTTP answer from memory"),
#   the gateway's GET /healthz (its own server floor), POST /token served from the cache (the product's hot path),
#   and POST /token that must refresh through the fake Salesforce (the miss path, single flight + lock + upstream).
# Also reports the gateway's resident memory before and after. Prints a Markdown table.
# Then the refresh engine (a small asyncio driver over raw sockets, below): a cold burst of many connections at a
# given Salesforce latency, and a client whose Salesforce hangs past the upstream timeout while others are served.
# BENCH_CASES picks the cases (default "wrk burst hanging"); BENCH_BURST_SIZES, BENCH_BURST_LATENCIES,
# BENCH_BURST_PER_CLIENT, BENCH_BURST_REPEAT, BENCH_HANG_REQUESTS, BENCH_HANG_WINDOW shape the last two.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages wrk nginx-light
DURATION=${BENCH_DURATION:-10}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
CASES=" ${BENCH_CASES:-wrk burst hanging} "

say "building release binaries"
swift build -c release --product token-gateway >/dev/null
swift build -c release --product fake-salesforce >/dev/null
BIN=$(swift build -c release --show-bin-path)

WORK=$(mktemp -d /tmp/tgw-bench-XXXXXX)
trap 'stop_stack; [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null; rm -rf "$WORK"' EXIT
# A 5 s upstream timeout (default 15) keeps the hanging-org case short; no other case comes near it.
start_stack "$BIN" "$WORK" TOKEN_GATEWAY_LOG_LEVEL=warning TOKEN_GATEWAY_KEY_UPSTREAM_LIMIT_PER_MINUTE=1000000 \
    TOKEN_GATEWAY_UPSTREAM_TIMEOUT_SECONDS=5
seed_connection
if [[ $CASES == *" wrk "* ]]; then
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
        non2xx=$(awk '/Non-2xx/ {print $5}' "$out")
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
    token_calls() {
        curl -sf "$FAKE/__fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token_calls"])'
    }
    CALLS_BEFORE=$(token_calls)
    wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/miss.lua" "$GW/token" >"$WORK/miss.txt"
    CALLS_AFTER=$(token_calls)
    MISS_REQUESTS=$(awk '/requests in/ {print $1}' "$WORK/miss.txt")
    printf '| %s | %s | %s | %s | %s |\n' "gateway POST /token, every call refreshes" \
        "$(awk '/Requests\/sec/ {print $2}' "$WORK/miss.txt")" "$(awk '$1=="50%" {print $2}' "$WORK/miss.txt")" \
        "$(awk '$1=="99%" {print $2}' "$WORK/miss.txt")" "$(awk '/Non-2xx/ {n=$5} END {print n+0}' "$WORK/miss.txt")"
    echo
    echo "refresh run: $MISS_REQUESTS requests caused $((CALLS_AFTER - CALLS_BEFORE)) Salesforce calls (single flight per connection)"
    echo "gateway resident memory: $RSS_IDLE idle, $RSS_LOADED after the cache-hit run; nginx workers: $(ps -o rss= -C nginx | awk '{s+=$1} END {print s" kB"}')"
fi

cat >"$WORK/refresh.py" <<'PY'
# The refresh engine under load, driven over raw sockets with asyncio (one process, one loop), against the stack
# bench.sh started: GW, FAKE, ADMIN, KEY in the environment. Case "burst": N cold connections at once at a
# Salesforce latency L. Case "hanging": one client whose Salesforce never answers in time, and what else still works.
import asyncio, collections, json, os, statistics, sys, time

GW, FAKE, ADMIN, KEY = (os.environ[name] for name in ("GW", "FAKE", "ADMIN", "KEY"))
REDIRECT = "https://app.example/cb"
COLD = {"min_ttl_seconds": 86400}  # more than any token_ttl_seconds: every request must refresh
TIMEOUT = 120  # bounds every wait of this script


def address(base):
    host, port = base.removeprefix("http://").split(":")
    return host, int(port)


def encode(base, method, path, body, token):
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: {base.removeprefix('http://')}\r\nConnection: close\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    return (head + f"Content-Length: {len(data)}\r\n\r\n").encode() + data


async def connect(base):
    return await asyncio.wait_for(asyncio.open_connection(*address(base)), TIMEOUT)


async def exchange(stream, base, method, path, body=None, token=None):
    """Sends one request on an open connection and reads the answer: (status, headers, body, seconds)."""
    reader, writer = stream
    started = time.perf_counter()
    try:
        writer.write(encode(base, method, path, body, token))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        lines = head.decode("latin-1").split("\r\n")
        headers = dict((k.strip().lower(), v.strip()) for k, _, v in (l.partition(":") for l in lines[1:] if l))
        if "content-length" in headers:
            data = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), TIMEOUT)
        else:
            data = await asyncio.wait_for(reader.read(), TIMEOUT)
        return int(lines[0].split()[1]), headers, data, time.perf_counter() - started
    finally:
        writer.close()


async def call(base, method, path, body=None, token=None):
    return await exchange(await connect(base), base, method, path, body, token)


async def must(base, method, path, body=None, token=None, expect=(200, 201)):
    status, _, data, _ = await call(base, method, path, body, token)
    if status not in expect:
        sys.exit(f"setup failed: {method} {path} answered {status}: {data[:300]!r}")
    return json.loads(data) if data else {}


async def limited(jobs, width=16):
    gate = asyncio.Semaphore(width)

    async def one(job):
        async with gate:
            return await job

    return await asyncio.gather(*(one(job) for job in jobs))


async def set_app(client_id, latency_ms):
    """Registers (or re-registers: the tokens stay) the fake's connected app with a token latency."""
    await must(FAKE, "POST", "/__fake/apps", {
        "client_id": client_id, "client_secret": "demo-secret", "redirect_uris": [REDIRECT],
        "scopes": "api refresh_token", "token_latency_ms": latency_ms})


async def authorized_client(client, client_id, connections, user_prefix):
    """A gateway client of the app and `connections` authorized connections c0.., each by its own fake user
    (Salesforce keeps at most five approvals of an app per user)."""
    await must(GW, "POST", "/tenants/bench/clients", {
        "id": client, "grant_type": "authorization_code", "login_url": FAKE, "client_id": client_id,
        "client_secret": "demo-secret", "redirect_uri": REDIRECT}, ADMIN)

    async def connection(index):
        user = f"{user_prefix}{index}@example.com"
        await must(FAKE, "POST", "/__fake/users", {"username": user, "active": True})
        code = (await must(FAKE, "POST", "/__fake/codes",
                           {"client_id": client_id, "redirect_uri": REDIRECT, "username": user}))["code"]
        await must(GW, "POST", "/exchange", {"client": client, "code": code, "connection": f"c{index}"}, KEY)

    await limited([connection(index) for index in range(connections)], width=8)


async def fake_calls():
    return (await must(FAKE, "GET", "/__fake/stats"))["token_calls"]


async def at_once(targets):
    """Asks every (client, connection) for a cold token at the same moment: all connections are opened first,
    then every request is written and the clock runs until the last answer. [(status, headers, body, seconds)]."""
    streams = await asyncio.gather(*(connect(GW) for _ in targets))
    return await asyncio.gather(*(
        exchange(stream, GW, "POST", "/token", {"client": client, "connection": connection, **COLD}, KEY)
        for stream, (client, connection) in zip(streams, targets)))


def refused(results):
    counts = collections.Counter(status for status, *_ in results if status != 200)
    return ", ".join(f"{count} × {status}" for status, count in sorted(counts.items())) or "0"


def ms(seconds):
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


async def burst():
    sizes = [int(n) for n in os.environ.get("BENCH_BURST_SIZES", "150 300").split()]
    latencies = [int(n) for n in os.environ.get("BENCH_BURST_LATENCIES", "200 300").split()]
    per_client = int(os.environ.get("BENCH_BURST_PER_CLIENT", "8"))
    repeat = int(os.environ.get("BENCH_BURST_REPEAT", "1"))
    total = max(sizes)
    targets = [(f"burst-{index // per_client:02d}", f"c{index % per_client}") for index in range(total)]
    await set_app("3MVG9-burst", 0)
    started = time.perf_counter()
    clients = sorted(set(client for client, _ in targets))
    await limited([authorized_client(client, "3MVG9-burst", sum(1 for c, _ in targets if c == client),
                                     f"{client}-u") for client in clients], width=4)
    print(f"\ncold burst: {total} connections authorized in {time.perf_counter() - started:.1f} s, "
          f"{per_client} per client (TOKEN_GATEWAY_UPSTREAM_CONCURRENCY_PER_CLIENT is 8 by default), "
          f"each its own user; every request has min_ttl_seconds 86400\n")
    print("| connections | Salesforce latency L | one cold request (median of 5) | wall time for all | "
          "in latencies (÷ L) | median request | not 200 | Salesforce calls |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for latency in latencies:
        await set_app("3MVG9-burst", latency)
        for size in sizes:
            for _ in range(repeat):
                single = [(await at_once([targets[index]]))[0] for index in range(5)]
                if any(status != 200 for status, *_ in single):
                    sys.exit(f"a single cold request failed: {[(s, b[:200]) for s, _, b, _ in single]}")
                before = await fake_calls()
                began = time.perf_counter()
                results = await at_once(targets[:size])
                wall = time.perf_counter() - began
                calls = await fake_calls() - before
                print(f"| {size} | {latency} ms | {ms(statistics.median(r[3] for r in single))} | {ms(wall)} | "
                      f"{wall * 1000 / latency:.1f} | {ms(statistics.median(r[3] for r in results))} | "
                      f"{refused(results)} | {calls} |")
                failures = collections.Counter(
                    json.loads(body or b"{}").get("error", "?") for status, _, body, _ in results if status != 200)
                if failures:
                    print(f"|  | errors: {dict(failures)} |  |  |  |  |  |  |")


async def metric(name):
    status, _, data, _ = await call(GW, "GET", "/metrics")
    for line in data.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    sys.exit(f"/metrics has no {name}")


async def hanging():
    requests = int(os.environ.get("BENCH_HANG_REQUESTS", "40"))
    window = float(os.environ.get("BENCH_HANG_WINDOW", "4"))
    await set_app("3MVG9-sick", 0)
    await set_app("3MVG9-healthy", 0)
    await authorized_client("sick", "3MVG9-sick", requests, "sick-u")
    await authorized_client("healthy", "3MVG9-healthy", 2, "healthy-u")
    probes = {
        "admin GET /tenants/bench/clients": lambda: call(GW, "GET", "/tenants/bench/clients", token=ADMIN),
        "GET /readyz": lambda: call(GW, "GET", "/readyz"),
        "healthy client, cache hit": lambda: call(GW, "POST", "/token", {"client": "healthy", "connection": "c0"},
                                                  KEY),
        "healthy client, cold token (fake latency 0)": lambda: call(
            GW, "POST", "/token", {"client": "healthy", "connection": "c1", **COLD}, KEY),
    }

    async def measure(rounds=None, until=None):
        seen = {name: [] for name in probes}
        while (rounds is not None and rounds > 0) or (until is not None and time.perf_counter() < until):
            for name, probe in probes.items():
                seen[name].append(await probe())
            rounds = rounds - 1 if rounds is not None else None
            await asyncio.sleep(0.1)
        return seen

    async def pool_samples(until):
        samples = []
        while time.perf_counter() < until:
            samples.append(await metric("token_gateway_db_pool_in_use"))
            await asyncio.sleep(0.1)
        return samples

    await measure(rounds=1)  # warm-up, not counted
    before = await measure(rounds=5)
    pool_before = await pool_samples(time.perf_counter() + 0.5)
    await set_app("3MVG9-sick", 600_000)
    calls_before = await fake_calls()
    began = time.perf_counter()
    sick = asyncio.ensure_future(at_once([("sick", f"c{index}") for index in range(requests)]))
    await asyncio.sleep(0.3)
    until = time.perf_counter() + window
    during, pool_during = await asyncio.gather(measure(until=until), pool_samples(until))
    results = await sick
    hung = time.perf_counter() - began
    cold_probes = len(during["healthy client, cold token (fake latency 0)"])
    sick_calls = await fake_calls() - calls_before - cold_probes
    after = (await at_once([("sick", "c0")]))[0]

    print(f"\nhanging org: {requests} connections of client 'sick' asked at once, its fake latency 600 s, "
          f"TOKEN_GATEWAY_UPSTREAM_TIMEOUT_SECONDS 5; probes one after another for {window:.0f} s meanwhile\n")
    print("| probe | before: median | while hanging: median | while hanging: max | samples | not 200 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in probes:
        times = [r[3] for r in during[name]]
        print(f"| {name} | {ms(statistics.median(r[3] for r in before[name]))} | {ms(statistics.median(times))} | "
              f"{ms(max(times))} | {len(times)} | {refused(during[name])} |")
    print(f"| token_gateway_db_pool_in_use (sampled every 100 ms) | {statistics.median(pool_before):.0f} | "
          f"{statistics.median(pool_during):.0f} | {max(pool_during):.0f} | {len(pool_during)} |  |")
    print()
    print("| the hanging client's requests | status | time |")
    print("| --- | --- | --- |")
    codes = collections.Counter(f"{status} {json.loads(body or b'{}').get('error', '')}"
                                for status, _, body, _ in results)
    times = sorted(r[3] for r in results)
    print(f"| {requests} at once ({sick_calls} reached Salesforce) | "
          f"{', '.join(f'{n} × {code}' for code, n in codes.items())} | "
          f"{ms(times[0])} to {ms(times[-1])} (all done {ms(hung)}) |")
    status, headers, body, seconds = after
    print(f"| one more after them (c0) | {status} {json.loads(body or b'{}').get('error', '')}, "
          f"Retry-After: {headers.get('retry-after', 'none')} | {ms(seconds)} |")


async def main():
    for case in sys.argv[1:]:
        await {"burst": burst, "hanging": hanging}[case]()


asyncio.run(main())
PY
cases=()
for case in burst hanging; do
    if [[ $CASES == *" $case "* ]]; then cases+=("$case"); fi
done
if [ ${#cases[@]} -gt 0 ]; then
    GW=$GW FAKE=$FAKE ADMIN=$ADMIN KEY=$KEY python3 "$WORK/refresh.py" "${cases[@]}"
fi
