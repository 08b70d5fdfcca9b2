#!/bin/sh
# SPDX-License-Identifier: MIT
# Runs the keyring test program on a private session bus (dbus-run-session):
#   run.sh keyring EXE   with gnome-keyring-daemon started and unlocked on it
#   run.sh none EXE      on a bus that can start no service: no Secret Service
#   run.sh nobus EXE     with no session bus at all (no address, no display)
# HOME and the XDG directories are a fresh temporary directory, so the
# user's own keyring is never touched. AUTHLOOP_TEST_WRAP (for example a
# valgrind command line) runs the program under it: the suite's valgrind stage
# wraps the program, not this shell.
set -eu
mode=$1
exe=$2
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HOME="$tmp" XDG_DATA_HOME="$tmp/data" XDG_CONFIG_HOME="$tmp/config" \
  XDG_CACHE_HOME="$tmp/cache" XDG_RUNTIME_DIR="$tmp/run"
mkdir -p "$XDG_DATA_HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
unset DBUS_SESSION_BUS_ADDRESS
wrap=${AUTHLOOP_TEST_WRAP:-}
status=0
if [ "$mode" = keyring ]; then
  dbus-run-session -- sh -c '
    printf "test-password" | gnome-keyring-daemon --unlock --components=secrets >/dev/null &&
    exec $1 "$0" keyring' "$exe" "$wrap" 2>"$tmp/bus.log" || status=$?
elif [ "$mode" = nobus ]; then
  env -u DISPLAY -u WAYLAND_DISPLAY $wrap "$exe" none 2>"$tmp/bus.log" || status=$?
else
  dbus-run-session --config-file="$here/session-without-services.conf" -- $wrap "$exe" none \
    2>"$tmp/bus.log" || status=$?
fi
# the bus's and the daemon's complaints, and the wrapper's report, when it failed
[ $status -eq 0 ] || cat "$tmp/bus.log" >&2
exit $status
