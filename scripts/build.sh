#!/usr/bin/env bash
# build.sh DIR [meson options...]: configure DIR once, then build it.
set -euo pipefail
dir=$1
shift
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; exit 1; }
fi
ninja -C "$dir" >/dev/null
