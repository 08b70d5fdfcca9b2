#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Opens the GTK 4 sample on a local reference server, with a one-time code in
# its field (provider "Chat gateway"). Kuzzle works too: user "kuzzle-user",
# password "kuzzle-pass"; CometChat: user "cometchat-uid-1", key "authkey-1".
# The session is kept with a key from your desktop's keyring; close the window
# and run it again to come back signed in (the server must still be running:
# this script stops it when the window closes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
state=$(mktemp -d)
coproc SERVER { exec node test/server/server.mjs --port 0 --state-dir "$state" --stdin-lifeline; }
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$state"' EXIT
read -r ready <&"${SERVER[0]}"
url="https://127.0.0.1:$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' <<<"$ready")"
code=$(node test/server/ctl.mjs --url "$url" --ca "$state/ca.pem" code alice 120)
echo "reference server on $url; a code for alice is in the One-time code field (tokens live 2 minutes)"
build/samples/gtk-login --url "$url" --ca "$state/ca.pem" --code "$code"
