#!/bin/sh
# SPDX-License-Identifier: MIT
# An older release's header against this library (issue: the ABI can grow).
# Copies include/authloop.h, removes the last field of every options struct,
# checks the structs did shrink, builds old_header.c against the copy and
# runs it against the shared library in BUILD_DIR. TAP output.
set -u
src=${1:?source dir}
build=${2:?build dir}
cc=${CC:-cc}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/include"
cp "$build/include/authloop-version.h" "$work/include/"
# The last member line before each "} authloop_*_options;".
awk '
  { lines[NR] = $0 }
  /^} authloop_(ctx|client|preauth)_options;/ {
    for (i = NR - 1; i > 0; i--)
      if (lines[i] ~ /^  [a-z].*;/) { drop[i] = 1; break }
  }
  END { for (i = 1; i <= NR; i++) if (!drop[i]) print lines[i] }
' "$src/include/authloop.h" > "$work/include/authloop.h"
removed=$(diff "$src/include/authloop.h" "$work/include/authloop.h" | grep -c '^<')
echo "1..2"
if [ "$removed" -eq 3 ]; then
  echo "ok 1 - the copy lacks the last field of each of the 3 options structs"
else
  echo "not ok 1 - $removed lines removed from the header copy, want 3"
  exit 1
fi
diff "$src/include/authloop.h" "$work/include/authloop.h" | sed 's/^/# /'
if ! $cc -std=c11 -D_DEFAULT_SOURCE -Wall -Werror -I"$work/include" \
  $(pkg-config --cflags libuv) -o "$work/old" "$src/test/abi/old_header.c" \
  -L"$build" -lauthloop $(pkg-config --libs libuv) -Wl,-rpath,"$build"; then
  echo "not ok 2 - the program does not build against the shorter header"
  exit 1
fi
# The shared library of this tree, not an installed one.
ldd "$work/old" | grep -q "$build/libauthloop.so" || {
  echo "not ok 2 - the program is not linked to $build/libauthloop.so"
  exit 1
}
out=$("$work/old")
rc=$?
echo "$out" | grep '^#'
echo "$out" | grep -v '^#' | sed 's/ - / 2 - /' | head -n 20
exit $rc
