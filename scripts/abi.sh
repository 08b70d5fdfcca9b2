#!/bin/sh
# SPDX-License-Identifier: MIT
# The ABI gate. abi/ holds what the shared libraries export: a readable
# list of symbols and libabigail's description of every public type.
#   scripts/abi.sh check  BUILD_DIR   fails on any difference (TAP output)
#   scripts/abi.sh update BUILD_DIR   rewrites abi/ from BUILD_DIR
# A difference is a decision, not a chore: an addition keeps the soversion,
# anything else (a removal, a struct or enum that moves) bumps it in
# meson.build and gets a line in CHANGELOG.md. See docs/abi.md.
set -u
mode=${1:?check or update}
build=${2:?build dir}
src=$(cd "$(dirname "$0")/.." && pwd)
libs="authloop authloop-glib"

real() { # the versioned file behind lib$1.so in the build dir
  f="$build/lib$1.so"
  [ -e "$f" ] || return 1
  readlink -f "$f"
}
dump() {
  abidw --headers-dir "$src/include" --drop-private-types --drop-undefined-syms \
    --no-show-locs --no-comp-dir-path --no-corpus-path --type-id-style hash "$1"
}
symbols() {
  nm -D --defined-only "$1" | awk '$2 == "T" || $2 == "D" || $2 == "B" || $2 == "R" { print $3 }' |
    LC_ALL=C sort
}

if [ "$mode" = update ]; then
  for l in $libs; do
    f=$(real "$l") || { echo "no lib$l.so in $build" >&2; continue; }
    dump "$f" > "$src/abi/lib$l.abi" || exit 1
    symbols "$f" > "$src/abi/lib$l.symbols"
    echo "abi/lib$l.abi, abi/lib$l.symbols: from $f"
  done
  exit 0
fi

n=0
fails=0
for l in $libs; do
  f=$(real "$l") || continue
  n=$((n + 1))
  if symbols "$f" | diff -u "$src/abi/lib$l.symbols" - > "$build/abi-$l.symbols.diff"; then
    echo "ok $n - lib$l exports exactly abi/lib$l.symbols"
  else
    echo "not ok $n - lib$l exports differ from abi/lib$l.symbols"
    sed 's/^/# /' "$build/abi-$l.symbols.diff"
    fails=$((fails + 1))
  fi
  n=$((n + 1))
  abidiff "$src/abi/lib$l.abi" "$f" > "$build/abi-$l.diff" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then
    echo "ok $n - lib$l types and functions match abi/lib$l.abi"
  else
    # abidiff: bit 1 tool error, 2 usage, 4 an ABI change, 8 an incompatible one
    echo "not ok $n - lib$l ABI differs from abi/lib$l.abi (abidiff status $rc)"
    sed 's/^/# /' "$build/abi-$l.diff"
    echo "# review it, then: scripts/abi.sh update $build (and see docs/abi.md)"
    fails=$((fails + 1))
  fi
done
echo "1..$n"
[ $n -gt 0 ] || { echo "not ok - no shared library in $build"; exit 1; }
[ $fails -eq 0 ]
