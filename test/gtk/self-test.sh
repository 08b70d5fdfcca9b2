#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The GTK sample in a real window under Xvfb, against the reference server
# with a login that answers after 1.5 s: the window must keep painting while
# it waits, show each status, save a screenshot (a test artifact) and log out.
# Prints TAP.   self-test.sh GTK_LOGIN_BINARY SCREENSHOT_PATH
set -uo pipefail
bin=$1
shot=$2
here=$(cd "$(dirname "$0")/.." && pwd)
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
echo "1..5"

coproc SERVER { exec node "$here/server/server.mjs" --port 0 --state-dir "$state" --stdin-lifeline; }
read -r ready <&"${SERVER[0]}"
port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' <<<"$ready")
url="https://127.0.0.1:$port"
ctl() { node "$here/server/ctl.mjs" --url "$url" --ca "$state/ca.pem" "$@"; }
code=$(ctl code grace)
ctl fault '{"route":"/auth/login","delayMs":1500}'
rm -f "$shot"

out=$(GSK_RENDERER=cairo GDK_BACKEND=x11 NO_AT_BRIDGE=1 timeout 120 xvfb-run -a \
  "$bin" --self-test --url "$url" --ca "$state/ca.pem" --code "$code" --screenshot "$shot" 2>/dev/null)
rc=$?
kill "$SERVER_PID" 2>/dev/null
printf '%s\n' "$out" | sed 's/^/# /'

check() { # check N DESCRIPTION CONDITION...
  local n=$1 what=$2
  shift 2
  if "$@"; then echo "ok $n - $what"; else echo "not ok $n - $what"; fi
}
statuses=$(printf '%s\n' "$out" | sed -n 's/^status: //p' | paste -sd'|')
frames=$(printf '%s\n' "$out" | sed -n 's/^frames painted while the login was in flight: //p')
check 1 "the sample exited 0 with its loop closed cleanly" \
  test "$rc" -eq 0 -a -n "$(printf '%s\n' "$out" | grep -x 'loop closed: clean')"
check 2 "the status line went: logging in, logged in, logged out" \
  test "$statuses" = "Logging in…|Logged in as grace|Logged out"
check 3 "the window kept painting while the login waited (${frames:-0} frames in 1.5 s)" \
  test "${frames:-0}" -ge 10
check 4 "a screenshot was saved" test -s "$shot"
check 5 "the screenshot is a PNG" test "$(head -c 8 "$shot" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a"
