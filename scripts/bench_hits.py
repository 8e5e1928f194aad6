"""Helpers of scripts/bench.sh for the instruction count of a cache hit.

  bench_hits.py send URL KEY COUNT       sends COUNT `POST /token` cache hits over one keep-alive connection
  bench_hits.py profile FILE             prints "total memset_in_mhd malloc_calls" of a callgrind output file
  bench_hits.py summary BASE FULL N      prints the per-hit figures of two profiles that differ by N hits
  bench_hits.py medians FILE             prints the wrk table (medians over rounds, ratios to nginx)
"""
import collections, re, socket, statistics, sys


def send(url, key, count):
    host, port = url.removeprefix("http://").split(":")
    body = b'{"client":"crm"}'
    request = (f"POST /token HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    stream = socket.create_connection((host, int(port)), timeout=600)
    reader = stream.makefile("rb")
    for _ in range(count):
        stream.sendall(request)
        status = reader.readline()
        length = 0
        while (line := reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        reader.read(length)
        if b" 200 " not in status:
            sys.exit(f"a hit answered {status!r}")
    stream.close()


def profile(path):
    """Total instructions, self instructions of memset called from libmicrohttpd, and calls of malloc.

    Callgrind's format: `fn=` starts a function's cost lines; `cfn=` + `calls=` introduce one line that is the
    inclusive cost of a call (not the caller's own). Names are compressed as "(id) name" once, "(id)" after."""
    names, objects = {}, {}
    total = memset_mhd = mallocs = 0
    current = current_object = callee = None
    after_calls = False
    number = re.compile(r"^[+\-*0-9]")

    def named(text, table):
        match = re.match(r"\((\d+)\)(?: (.*))?", text)
        if not match:
            return text
        if match.group(2) is not None:
            table[match.group(1)] = match.group(2)
        return table.get(match.group(1), "?")

    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        if line.startswith("ob="):
            current_object = named(line[3:], objects)
        elif line.startswith("fn="):
            current = named(line[3:], names)
        elif line.startswith("cob="):
            named(line[4:], objects)
        elif line.startswith("cfn="):
            callee = named(line[4:], names)
        elif line.startswith("calls="):
            after_calls = True
            if callee == "malloc":
                mallocs += int(line[6:].split()[0])
        elif line.startswith("summary:") or line.startswith("totals:"):
            total = int(line.split()[1])
        elif number.match(line):
            parts = line.split()
            if after_calls:
                # The inclusive cost of a call: memset reached from libmicrohttpd is the pool zeroing.
                if "memset" in (callee or "") and "microhttpd" in (current_object or ""):
                    memset_mhd += int(parts[1]) if len(parts) > 1 else 0
                after_calls = False
    print(total, memset_mhd, mallocs)


def summary(base, full, hits):
    (t0, m0, a0), (t1, m1, a1) = ([int(x) for x in open(p).read().split()] for p in (base, full))
    per = lambda a, b: (b - a) / hits
    print(f"| instructions per hit, all | {per(t0, t1):,.0f} |")
    print(f"| of which libmicrohttpd's pool zeroing (memset called from MHD) | {per(m0, m1):,.0f} |")
    print(f"| instructions per hit, pool zeroing aside (goal < 25,000) | {per(t0 - m0, t1 - m1):,.0f} |")
    print(f"| malloc calls per hit | {per(a0, a1):.1f} |")


def medians(path):
    """FILE: lines "name rps p50_ms p99_ms non2xx" from every round; medians per name, ratios to nginx."""
    rows = collections.OrderedDict()
    for line in open(path):
        name, rps, p50, p99, bad = line.rstrip("\n").split("\t")
        rows.setdefault(name, []).append((float(rps), float(p50), float(p99), int(bad)))
    med = {name: tuple(statistics.median(r[i] for r in runs) for i in range(3)) for name, runs in rows.items()}
    reference = {"-c64": med.get("nginx return 200"), "-c1": med.get("nginx return 200, 1 connection")}
    print("| target | rounds | req/s (median) | ratio to nginx | p50 ms | p99 ms | p99 vs nginx | non-2xx |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, runs in rows.items():
        rps, p50, p99 = med[name]
        ref = reference["-c1" if "1 connection" in name else "-c64"]
        ratio = f"{rps / ref[0]:.2f}" if ref else "?"
        p99ratio = f"{p99 / ref[2]:.2f}" if ref and ref[2] else "?"
        print(f"| {name} | {len(runs)} | {rps:,.0f} | {ratio} | {p50:.3f} | {p99:.3f} | {p99ratio} | "
              f"{sum(r[3] for r in runs)} |")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "send":
        send(args[0], args[1], int(args[2]))
    elif command == "profile":
        profile(args[0])
    elif command == "summary":
        summary(args[0], args[1], int(args[2]))
    elif command == "medians":
        medians(args[0])
    else:
        sys.exit(__doc__)
