#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# build.sh DIR [meson options...]: configure DIR (or apply the options to an
# existing DIR, so a build dir never silently keeps other settings), then build.
set -euo pipefail
dir=$1
shift
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" "$@" >"$log" 2>&1 || { cat "$log"; exit 1; }
elif [ $# -gt 0 ]; then
  meson setup --reconfigure "$dir" "$@" >"$log" 2>&1 || { cat "$log"; exit 1; }
fi
ninja -C "$dir" >"$log" 2>&1 || { cat "$log"; exit 1; }
