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
