#!/usr/bin/env bash
# A whole session against the bundled fake Salesforce: a throwaway PostgreSQL, fake-salesforce and the gateway on
# loopback; then the calls an operator and a service make, printed with their answers. Everything stops on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages
swift build --product token-gateway >/dev/null
swift build --product fake-salesforce >/dev/null
BIN=$(swift build --show-bin-path)
WORK=$(mktemp -d /tmp/tgw-demo-XXXXXX)
trap 'stop_stack; rm -rf "$WORK"' EXIT
start_stack "$BIN" "$WORK" TOKEN_GATEWAY_LOG_FORMAT=text
show() { printf '\n$ %s\n' "$*" | sed "s/$ADMIN/\$ADMIN/g; s/${KEY:-no-key-yet}/\$KEY/g"; eval "$@"; echo; }

say "fake Salesforce at $FAKE, gateway at $GW"
curl -sf -H "$J" "$FAKE/__fake/apps" \
    -d '{"client_id":"3MVG9-demo","client_secret":"demo-secret","redirect_uris":["https://app.example/cb"],"scopes":"api refresh_token"}' >/dev/null
curl -sf -H "$J" "$FAKE/__fake/users" -d '{"username":"ops@example.com","active":true}' >/dev/null
show curl -s -H "'$A'" -H "'$J'" "$GW/tenants" -d "'{\"id\":\"acme\",\"name\":\"Acme Corp\"}'"
KEY=$(curl -sf -H "$A" -H "$J" "$GW/tenants/acme/keys" -d '{"name":"billing"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
echo "(created an API key for tenant acme: \$KEY, shown once)"
show curl -s -H "'$A'" -H "'$J'" "$GW/tenants/acme/clients" -d "'{\"id\":\"crm-sync\",\"grant_type\":\"authorization_code\",\"login_url\":\"$FAKE\",\"client_id\":\"3MVG9-demo\",\"client_secret\":\"demo-secret\",\"redirect_uri\":\"https://app.example/cb\",\"scopes\":[\"api\",\"refresh_token\"]}'"
CODE=$(curl -sf -H "$J" "$FAKE/__fake/codes" -d '{"client_id":"3MVG9-demo","redirect_uri":"https://app.example/cb","username":"ops@example.com"}' |
    python3 -c 'import json,sys,urllib.parse; print(urllib.parse.quote(json.load(sys.stdin)["code"], safe=""))')
echo "(a person approved the app; the browser landed on https://app.example/cb?code=$CODE)"
show curl -s -H "'Authorization: Bearer $KEY'" -H "'$J'" "$GW/exchange" -d "'{\"client\":\"crm-sync\",\"code\":\"https://app.example/cb?code=$CODE\"}'"
show curl -s -H "'Authorization: Bearer $KEY'" -H "'$J'" "$GW/token" -d "'{\"client\":\"crm-sync\"}'"
show curl -s -H "'Authorization: Bearer $KEY'" -H "'$J'" "$GW/token" -d "'{\"client\":\"crm-sync\",\"min_ttl_seconds\":86400}'"
show curl -s -H "'$A'" "$GW/tenants/acme/clients/crm-sync/connections"
show curl -s "$FAKE/__fake/stats"
say "demo done (logs were in $WORK)"
