#!/usr/bin/env bash
# The whole flow on this machine, with no account anywhere: installs what is
# missing, builds, starts the reference server, mints a one-time code for a
# user, runs samples/login against it (login -> loginAttempt -> user ->
# automatic token refresh before expiry -> logout), and stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
scripts/build.sh build
state=$(mktemp -d)
# The server's stdin is its lifeline: it stops when this script goes.
coproc SERVER { exec node test/server/server.mjs --port 0 --state-dir "$state" --stdin-lifeline; }
server=$SERVER_PID
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$state"' EXIT
read -r ready <&"${SERVER[0]}" || { echo "demo: the reference server did not start" >&2; exit 1; }
port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' <<<"$ready")
url="https://127.0.0.1:$port"
ca="$state/ca.pem"
echo "== reference server on $url"
# Tokens that live 6 s instead of an hour, so the automatic refresh shows up quickly.
code=$(node test/server/ctl.mjs --url "$url" --ca "$ca" code alice 6)
echo "== minted a one-time authorization code for user alice (tokens live 6 s)"
build/samples/login --url "$url" --ca "$ca" --code "$code" --until-refresh
