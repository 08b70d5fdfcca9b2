#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Qt sample as a user meets it: a real window under Xvfb, against the
# reference server, driven by include/authloop-qt.h.
#   1. login: the user and a countdown with hours on screen (screenshot
#      saved: a test artifact), a logout, then the idle test: after the
#      logout Qt's event loop sleeps (under 50 wake-ups in 5 s; the
#      measuring timer's own is one).
#   2. error: a refused code gives an error in the error colour, wrapped.
# Prints TAP.   self-test.sh QT_LOGIN_BINARY SCREENSHOT_PATH
set -uo pipefail
bin=$1
shot=$2
here=$(cd "$(dirname "$0")/.." && pwd)
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
echo "1..7"

coproc SERVER { exec node "$here/server/server.mjs" --port 0 --state-dir "$state" --stdin-lifeline; }
read -r ready <&"${SERVER[0]}"
port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' <<<"$ready")
url="https://127.0.0.1:$port"
ctl() { node "$here/server/ctl.mjs" --url "$url" --ca "$state/ca.pem" "$@"; }
rm -f "$shot"
export XDG_RUNTIME_DIR="$state/run"
mkdir -p "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
run() { QT_QPA_PLATFORM=xcb timeout 60 xvfb-run -a "$bin" --url "$url" --ca "$state/ca.pem" "$@" 2>/dev/null; }
show() { printf '%s\n' "$1" | sed 's/^/# /'; }
check() { # check N DESCRIPTION CONDITION...
  local n=$1 what=$2
  shift 2
  if "$@"; then echo "ok $n - $what"; else echo "not ok $n - $what"; fi
}
field() { printf '%s\n' "$1" | sed -n "s/^$2: //p" | paste -sd'|'; }
clean() { test "$1" -eq 0 -a -n "$(printf '%s\n' "$2" | grep -x 'loop closed: clean')"; }

# 1. login, logout, idle
out=$(run --self-test=login --code "$(ctl code grace)" --screenshot "$shot")
rc=$?
show "$out"
wakeups=$(field "$out" "idle wake-ups in 5 s")
check 1 "login: exited 0, its loop closed cleanly" clean "$rc" "$out"
check 2 "logging in, logged in, grace shown, logged out" test \
  "$(field "$out" status)/$(field "$out" user)" = "Logging in…|Logged in|Logged out/grace|(none)"
check 3 "the countdown has hours: $(field "$out" countdown)" \
  grep -qxE 'Token expires in (1:00:00|0:59:[0-5][0-9])' <<<"$(field "$out" countdown)"
check 4 "a screenshot was saved, a PNG" \
  test "$(head -c 8 "$shot" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a"
check 5 "after the logout the event loop slept: ${wakeups:-?} wake-ups in 5 s (under 50)" \
  test -n "$wakeups" -a "${wakeups:-99}" -lt 50

# 2. error
ctl fault '{"route":"/auth/login","status":401,"body":"{\"error\":{\"code\":4011,\"name\":\"InvalidCode\",\"message\":\"Authorization code is invalid.\"}}"}'
out=$(run --self-test=error --code not-a-code)
rc=$?
show "$out"
check 6 "error: exited 0, its loop closed cleanly" clean "$rc" "$out"
check 7 "a failed login shows the server's error, in red and wrapped" \
  sh -c 'case "$0" in "Authorization code is invalid. (E"*) ;; *) exit 1 ;; esac &&
         case "$1" in "in red, wrapped,"*) ;; *) exit 1 ;; esac' \
  "$(field "$out" error)" "$(field "$out" "error shown")"
kill "$SERVER_PID" 2>/dev/null
