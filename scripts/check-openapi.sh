#!/usr/bin/env bash
# Validates openapi.yaml: the document against the OpenAPI schema (openapi-spec-validator), then every
# request/response example against the schema it illustrates. Exits non-zero on any failure.
# Usage: scripts/check-openapi.sh [path/to/openapi.yaml]   (default: openapi.yaml at the repository top)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
spec="${1:-$root/openapi.yaml}"
python="${PYTHON:-python3}"

if [[ ! -f "$spec" ]]; then
    echo "check-openapi: no such file: $spec" >&2
    exit 2
fi

if ! "$python" -c 'import openapi_spec_validator, openapi_schema_validator, yaml' 2>/dev/null; then
    echo "check-openapi: installing openapi-spec-validator from PyPI" >&2
    "$python" -m pip install -q openapi-spec-validator
fi

"$python" -m openapi_spec_validator "$spec"

"$python" - "$spec" <<'PY'
import sys
import yaml
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator

path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    spec = yaml.safe_load(f)
components = spec.get("components", {})


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


failures = 0
checked = 0


def check(schema, value, where, validator_class):
    global failures, checked
    checked += 1
    # Wrap the schema so that its '#/components/...' references resolve inside the same document.
    validator = validator_class({"allOf": [schema], "components": components})
    for error in validator.iter_errors(value):
        failures += 1
        location = "/".join(str(p) for p in error.absolute_path) or "(root)"
        print(f"{path}: example {where} at {location}: {error.message}", file=sys.stderr)


def check_media(holder, where, validator_class):
    for media_type, media in resolve(holder).get("content", {}).items():
        schema = media.get("schema")
        if schema is None:
            continue
        if "example" in media:
            check(schema, media["example"], f"{where} {media_type}", validator_class)
        for name, example in media.get("examples", {}).items():
            check(schema, resolve(example)["value"], f"{where} {media_type} '{name}'", validator_class)


for route, item in spec.get("paths", {}).items():
    for method, operation in item.items():
        if method not in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
            continue
        if "requestBody" in operation:
            check_media(operation["requestBody"], f"{method.upper()} {route} request", OAS30WriteValidator)
        for status, response in operation.get("responses", {}).items():
            check_media(response, f"{method.upper()} {route} {status}", OAS30ReadValidator)

if failures:
    print(f"{path}: {failures} example error(s) in {checked} examples", file=sys.stderr)
    sys.exit(1)
print(f"{path}: {checked} examples match their schemas")
PY
