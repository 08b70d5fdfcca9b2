#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Python sample (samples/python/login.py) against a local reference
# server: installs what is missing, builds, starts the server, mints a
# one-time code and runs the sample with authloop's typelib from the build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
state=$(mktemp -d)
coproc SERVER { exec node test/server/server.mjs --port 0 --state-dir "$state" --stdin-lifeline; }
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$state"' EXIT
read -r ready <&"${SERVER[0]}"
url="https://127.0.0.1:$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' <<<"$ready")"
code=$(node test/server/ctl.mjs --url "$url" --ca "$state/ca.pem" code alice)
# Debian's python3, which has PyGObject (python3-gi)
GI_TYPELIB_PATH="$PWD/build" LD_LIBRARY_PATH="$PWD/build" \
  /usr/bin/python3 samples/python/login.py "$url" "$code" "$state/ca.pem"
