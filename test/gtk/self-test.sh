#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The GTK sample as a user meets it: a real window under Xvfb, on a private
# session bus with a real gnome-keyring-daemon, against the reference server.
#   1. login: each provider shows only its fields; a login that answers after
#      1.5 s while the window keeps painting; the user and a countdown with
#      hours on screen (screenshot saved: a test artifact); the window closed.
#   2. restore: a new start of the app, with a new keyring daemon on the same
#      keyring, opens on the kept session; a refresh keeps the user shown;
#      then a logout.
#   3. error: a refused code with a 2,000-character message from the server
#      gives an error styled as one, wrapped and cut at four lines: the window
#      grows neither wider nor taller than a screen (a second screenshot).
#   4. no Secret Service on the bus: the app says the session is not kept,
#      logs in all the same, and keeps nothing on disk.
#   5. browser: OpenID Connect against a real OP (oidc-provider, test/peers)
#      in the desktop's browser: the window opens the authorization URL with
#      the desktop's handler for https (test/gtk/browser.sh, a scripted user),
#      which sends the redirect back through the desktop to the app's
#      .desktop file (its private-use scheme), after a forged one; then a
#      logout opens the issuer's sign-out page.
# Prints TAP.   self-test.sh GTK_LOGIN_BINARY SCREENSHOT_PATH DESKTOP_FILE
set -uo pipefail
bin=$1
shot=$2
desktop=$3
shot_error=${shot%.png}-error.png
here=$(cd "$(dirname "$0")/.." && pwd)
state=$(mktemp -d)
home=$(mktemp -d)
oidc_pid=
trap '[ -n "$oidc_pid" ] && kill "$oidc_pid" 2>/dev/null; rm -rf "$state" "$home"' EXIT
echo "1..18"

coproc SERVER { exec node "$here/server/server.mjs" --port 0 --state-dir "$state" --stdin-lifeline; }
read -r ready <&"${SERVER[0]}"
port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' <<<"$ready")
url="https://127.0.0.1:$port"
ctl() { node "$here/server/ctl.mjs" --url "$url" --ca "$state/ca.pem" "$@"; }
rm -f "$shot" "$shot_error"

# the app's home: its keyring and its kept session live here, across runs
export HOME="$home" XDG_DATA_HOME="$home/data" XDG_CONFIG_HOME="$home/config" \
  XDG_CACHE_HOME="$home/cache" XDG_STATE_HOME="$home/state" XDG_RUNTIME_DIR="$home/run"
mkdir -p "$XDG_DATA_HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_STATE_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
unset DBUS_SESSION_BUS_ADDRESS

run() { # run keyring|none ARGS...: the sample on a fresh bus and X server
  local bus=$1
  shift
  local cmd=(env GSK_RENDERER=cairo GDK_BACKEND=x11 NO_AT_BRIDGE=1 GTK_A11Y=none
    timeout 60 xvfb-run -a "$bin" --url "$url" --ca "$state/ca.pem" "$@")
  if [ "$bus" = keyring ]; then
    dbus-run-session -- sh -c 'printf "desktop-password" |
      gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec "$@"' sh "${cmd[@]}" \
      2>/dev/null
  else
    dbus-run-session --config-file="$here/keyring/session-without-services.conf" -- "${cmd[@]}" \
      2>/dev/null
  fi
}
show() { printf '%s\n' "$1" | sed 's/^/# /'; }
check() { # check N DESCRIPTION CONDITION...
  local n=$1 what=$2
  shift 2
  if "$@"; then echo "ok $n - $what"; else echo "not ok $n - $what"; fi
}
field() { printf '%s\n' "$1" | sed -n "s/^$2: //p" | paste -sd'|'; }
clean() { test "$1" -eq 0 -a -n "$(printf '%s\n' "$2" | grep -x 'loop closed: clean')"; }

# 1. login
ctl fault '{"route":"/auth/login","delayMs":1500}'
out=$(run keyring --self-test=login --code "$(ctl code grace)" --screenshot "$shot")
rc=$?
show "$out"
frames=$(field "$out" "frames painted while the login was in flight")
check 1 "login: exited 0, its loop closed cleanly" clean "$rc" "$out"
check 2 "each provider shows only its fields" test \
  "$(field "$out" "fields gateway")/$(field "$out" "fields kuzzle")/$(field "$out" "fields cometchat")" \
  = "One-time code/Username,Password/User ID,Auth key"
check 3 "the key came from the keyring, then: logging in, logged in, grace shown" test \
  "$(field "$out" keyring)/$(field "$out" status)/$(field "$out" user)" \
  = "key ready/Signed out|Logging in…|Logged in/grace"
check 4 "the window kept painting while the login waited (${frames:-0} frames in 1.5 s)" \
  test "${frames:-0}" -ge 10
check 5 "the countdown has hours: $(field "$out" countdown)" \
  grep -qxE 'Token expires in (1:00:00|0:59:[0-5][0-9])' <<<"$(field "$out" countdown)"
check 6 "a screenshot was saved, a PNG" \
  test "$(head -c 8 "$shot" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a"
check 7 "the session is kept in a file, not in clear" \
  sh -c '! grep -qs grace "$0"/state/authloop-login/session-gateway &&
         test -s "$0"/state/authloop-login/session-gateway' "$home"

# 2. restore: a new keyring daemon unlocks the same keyring
out=$(run keyring --self-test=restore)
rc=$?
show "$out"
check 8 "restore: exited 0, its loop closed cleanly" clean "$rc" "$out"
check 9 "the app opened signed in as grace, refreshed, still showed grace, logged out" test \
  "$(field "$out" status)/$(field "$out" user)" \
  = "Welcome back|Tokens refreshed|Logged out/grace|(none)"

# 3. error
long="Authorization code is invalid.$(printf ' The server explains this at great length%.0s' $(seq 50))"
ctl fault "{\"route\":\"/auth/login\",\"status\":401,\"body\":$(node -e 'console.log(JSON.stringify(JSON.stringify({error: {code: 4011, name: "InvalidCode", message: process.argv[1]}})))' "$long")}"
out=$(run keyring --self-test=error --code not-a-code --screenshot "$shot_error")
rc=$?
show "$out"
shown=$(field "$out" "error shown")
before=$(sed -n 's/.*window width \([0-9]*\) before.*/\1/p' <<<"$shown")
after=$(sed -n 's/.*, \([0-9]*\) after.*/\1/p' <<<"$shown")
height=$(sed -n 's/.*, height \([0-9]*\)$/\1/p' <<<"$shown")
check 10 "error: exited 0, its loop closed cleanly" clean "$rc" "$out"
check 11 "a failed login shows the server's error, styled as an error and wrapped" \
  sh -c 'case "$0" in "Authorization code is invalid. The server explains"*"(E"*")"*) ;; *) exit 1 ;; esac &&
         case "$1" in "styled as an error, wrapped,"*) ;; *) exit 1 ;; esac' \
  "$(field "$out" error)" "$shown"
check 12 "the long error widened the window no more than it (${before:-?} px before, ${after:-?} after) and kept it under a screen's height (${height:-?} px)" \
  test -n "$before" -a "$before" = "$after" -a "${height:-9999}" -lt 600

# 4. no Secret Service
rm -rf "$home/state/authloop-login"
out=$(run none --self-test=login --code "$(ctl code grace)")
rc=$?
show "$out"
check 13 "no keyring: the app said so, and still logged in grace" test \
  "$rc/$(field "$out" user)" = "0/grace" -a -n "$(field "$out" keyring | grep 'no Secret Service')"
check 14 "no keyring: nothing kept on disk" \
  test -z "$(ls -A "$home/state/authloop-login" 2>/dev/null)"

# 5. browser: the OP shares the reference server's certificates (one CA)
mkfifo "$state/oidc.ready"
node "$here/peers/oidc.mjs" --state-dir "$state" >"$state/oidc.ready" 2>"$state/oidc.log" &
oidc_pid=$!
read -r -t 60 oready <"$state/oidc.ready"
issuer=$(sed -n 's/.*"issuer":"\([^"]*\)".*/\1/p' <<<"$oready")
apps="$XDG_DATA_HOME/applications"
mkdir -p "$apps"
cp "$desktop" "$apps/org.authloop.LoginSample.desktop"
printf '%s\n' '[Desktop Entry]' 'Type=Application' 'Name=Test browser' \
  "Exec=$here/gtk/browser.sh %u" 'MimeType=x-scheme-handler/http;x-scheme-handler/https;' \
  >"$apps/test-browser.desktop"
printf '%s\n' '[Default Applications]' 'x-scheme-handler/https=test-browser.desktop' \
  'x-scheme-handler/org.authloop.loginsample=org.authloop.LoginSample.desktop' \
  >"$XDG_CONFIG_HOME/mimeapps.list"
export BROWSER_LOG="$home/browser.log" OIDC_ISSUER="$issuer" OIDC_CA="$state/ca.pem" GTK_LOGIN="$bin"
: >"$BROWSER_LOG"
out=$(run keyring --self-test=browser --url "$issuer" --client-id public)
rc=$?
show "$out"
show "$(cat "$BROWSER_LOG" "$BROWSER_LOG.out" 2>/dev/null)"
signin=$(sed -n 1p "$BROWSER_LOG")
# the sign-out page's browser was started as the app closed: its line may
# come after the app's end (tail -f waits for it, bounded)
exec 8< <(exec timeout 20 tail -n +1 -f "$BROWSER_LOG")
tail_pid=$!
signout=$(grep -m1 "/session/end" <&8)
kill "$tail_pid" 2>/dev/null
exec 8<&-
check 15 "browser: exited 0, its loop closed cleanly" clean "$rc" "$out"
check 16 "the browser was given the issuer's authorization URL: PKCE S256, state, nonce, the app's redirect" \
  sh -c 'case "$0" in "$1/auth?"*) ;; *) exit 1 ;; esac
         for p in code_challenge_method=S256 code_challenge= state= nonce= client_id=public \
           redirect_uri=org.authloop.loginsample%3A%2Fcallback response_type=code; do
           case "$0" in *[?\&]"$p"*) ;; *) exit 1 ;; esac
         done' "$signin" "$issuer"
check 17 "a forged redirect (another state) was refused while the sign-in waited; then the real one signed in alice" \
  test "$(printf '%s\n' "$out" | sed -n -e 's/^error: The browser came back with an answer that is not for this sign-in (\(E[A-Z]*\)).*/\1/p' \
    -e 's/^user: //p' | paste -sd/)" = "EINVAL/alice/(none)"
check 18 "the logout opened the issuer's sign-out page with the id token as a hint" \
  sh -c 'case "$0" in "$1"/session/end\?*id_token_hint=*) ;; *) exit 1 ;; esac' "$signout" "$issuer"
kill "$oidc_pid" 2>/dev/null
oidc_pid=
kill "$SERVER_PID" 2>/dev/null
