#!/usr/bin/env bash
# Checks that every `public` or `open` declaration under Sources/ has a `///` doc comment directly above it
# (STYLE.md: "`///` on every public type and function"). Attribute lines (`@inlinable`, `@discardableResult`, ...)
# may stand between the comment and the declaration; a blank line or a `//` comment may not. `public import`
# lines are not declarations; neither is a line where `open` is a variable (`open > limit ? ...`): the modifier
# must be followed by a keyword.
#
# Usage: bash scripts/check-docs.sh [folder ...]   (default: Sources). Lists file:line of each undocumented
# declaration and exits non-zero if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."
folders=("$@")
[[ ${#folders[@]} -gt 0 ]] || folders=(Sources)

mapfile -t files < <(find "${folders[@]}" -name '*.swift' -type f | sort)
[[ ${#files[@]} -gt 0 ]] || { echo "check-docs: no Swift files under ${folders[*]}" >&2; exit 2; }

# `above` is the last line that is not an attribute of its own, so attributes between comment and declaration
# are skipped; it is reset at each file's first line.
undocumented=$(awk '
    FNR == 1 { above = "" }
    {
        line = $0
        stripped = line
        sub(/^[ \t]*(@[A-Za-z_][A-Za-z0-9_]*(\([^)]*\))?[ \t]+)*/, "", stripped)
        if (stripped ~ /^(public|open)(\([a-z]+\))?[ \t]+[a-z]/ && stripped !~ /^public[ \t]+import[ \t]/) {
            if (above !~ /^[ \t]*\/\/\//) printf "%s:%d: %s\n", FILENAME, FNR, substr(stripped, 1, 100)
        } else if (line ~ /^[ \t]*@[A-Za-z_]/) {
            next
        }
        above = line
    }
' "${files[@]}")

if [[ -n "$undocumented" ]]; then
    echo "$undocumented"
    echo "FAIL: $(wc -l <<<"$undocumented") public declarations have no /// comment directly above them" >&2
    exit 1
fi
echo "ok: every public declaration in ${#files[@]} files under ${folders[*]} has a /// comment"
