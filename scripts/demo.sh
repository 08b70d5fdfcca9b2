#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole flow on this machine, with no account anywhere: installs what is
# missing, builds, starts the reference server, makes a backend key pair,
# mints a one-time code for a user with samples/preauth (a bearer JWT signed
# with that key), runs samples/login with it (login -> loginAttempt -> user ->
# automatic token refresh before expiry -> logout), and stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
scripts/build.sh build
state=$(mktemp -d)
# The server's stdin is its lifeline: it stops when this script goes.
# Tokens live 6 s instead of an hour, so the automatic refresh shows up quickly.
coproc SERVER { exec node test/server/server.mjs --port 0 --state-dir "$state" --token-ttl 6 --stdin-lifeline; }
server=$SERVER_PID
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$state"' EXIT
read -r ready <&"${SERVER[0]}" || { echo "demo: the reference server did not start" >&2; exit 1; }
port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' <<<"$ready")
url="https://127.0.0.1:$port"
ca="$state/ca.pem"
echo "== reference server on $url"
# This demo's backend: an EC P-256 key pair, its public half registered with
# the gateway under the client id "demo-backend".
mkdir -p "$state/clients"
openssl ecparam -name prime256v1 -genkey -noout -out "$state/backend.key" 2>/dev/null
openssl ec -in "$state/backend.key" -pubout -out "$state/clients/demo-backend.pem" 2>/dev/null
echo "== backend key made and registered as client demo-backend"

code=$(build/samples/preauth --url "$url" --ca "$ca" --client-id demo-backend \
  --key "$state/backend.key" --user alice)
echo "== pre-auth: the backend minted a one-time authorization code for alice (ES256 bearer)"
build/samples/login --url "$url" --ca "$ca" --code "$code" --until-refresh
