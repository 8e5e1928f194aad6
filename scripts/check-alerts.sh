#!/usr/bin/env bash
# Checks the Prometheus alerting rules that ship with the gateway (Docker/prometheus/alerts.yml):
#   1. `promtool check rules`: the file loads as Prometheus would load it;
#   2. `promtool test rules Docker/prometheus/alerts.test.yml`: each alert fires on the series that should raise
#      it and stays quiet on healthy ones;
#   3. every metric name the rules use is one the gateway exports (named in Sources/TokenGateway* or Sources/token-gateway; the Swift
#      test AlertRulesTests checks the same names against a running gateway's GET /metrics).
#
# promtool comes from Debian's `prometheus` package, the only one that ships it. Installing that package would
# also install and start a Prometheus server, so the script downloads the .deb with apt and unpacks only
# promtool (a static binary) into a cache folder, unless promtool is already on PATH.
#
# Usage: bash scripts/check-alerts.sh      (as root on Debian 12). Exits non-zero if any check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
RULES=Docker/prometheus/alerts.yml
TESTS=Docker/prometheus/alerts.test.yml
CACHE="${TMPDIR:-/tmp}/token-gateway-tools"

find_promtool() {
    if command -v promtool >/dev/null 2>&1; then command -v promtool; return 0; fi
    if [[ -x "$CACHE/usr/bin/promtool" ]]; then echo "$CACHE/usr/bin/promtool"; return 0; fi
    return 1
}

if ! PROMTOOL="$(find_promtool)"; then
    echo "==> fetching promtool (Debian package prometheus, unpacked without installing)"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    # _apt cannot write into a root-owned mktemp folder: let it.
    chmod 777 "$work"
    (cd "$work" && apt-get download prometheus >/dev/null 2>&1) || {
        apt-get update -qq
        (cd "$work" && apt-get download prometheus >/dev/null)
    }
    mkdir -p "$CACHE"
    dpkg-deb --fsys-tarfile "$work"/prometheus_*.deb | tar -x -C "$CACHE" ./usr/bin/promtool
    PROMTOOL="$CACHE/usr/bin/promtool"
fi
echo "promtool: $("$PROMTOOL" --version 2>&1 | head -n1)"

"$PROMTOOL" check rules "$RULES"
"$PROMTOOL" test rules "$TESTS"

# Metric names in the rules' expressions; histogram series are named after their histogram.
mapfile -t names < <(grep -oE 'token_gateway_[a-z0-9_]+' "$RULES" | sed -E 's/_(bucket|sum|count)$//' | sort -u)
missing=()
for name in "${names[@]}"; do
    grep -rqw -- "$name" Sources/TokenGateway*/ Sources/token-gateway/ || missing+=("$name")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "FAIL: $RULES uses metrics the gateway does not export: ${missing[*]}" >&2
    exit 1
fi
echo "ok: the ${#names[@]} metrics the rules use are exported by the gateway: ${names[*]}"
