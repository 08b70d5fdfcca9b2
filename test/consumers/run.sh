#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Consumers of an installed authloop, as a packager and a new user would be:
# plain cc with pkg-config, a static link, CMake's find_package, and a meson
# parent with authloop as a subproject (static, no tests of authloop's, nothing
# installed with the parent). TAP output.   run.sh SOURCE_DIR
set -uo pipefail
src=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$work/log" | tail -20; }
check() { local what=$1; shift; if "$@" >"$work/log" 2>&1; then ok "$what"; else notok "$what"; fi; }
echo "1..8"
prefix=$work/prefix
check "configure, build and install into a prefix" sh -c \
  "meson setup '$work/b' '$src' --prefix='$prefix' -Dtests=false -Dsamples=false >/dev/null &&
   ninja -C '$work/b' >/dev/null && meson install -C '$work/b' --quiet"
# Every exported function has its man page in the prefix (a page or a link to one).
check "man pages installed for every export" sh -c \
  "test -d '$prefix/share/man/man3' && for f in \$(cat '$src'/abi/*.symbols); do
     test -e '$prefix/share/man/man3/'\$f.3 || { echo \"no man page for \$f\"; exit 1; }
   done && test -L '$prefix/share/man/man3/authloop_ctx_close.3' &&
   MANWIDTH=80 man -l '$prefix/share/man/man3/authloop_ctx_close.3' 2>&1 | grep -q 'authloop_ctx_close'"
libdir=$(meson introspect "$work/b" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="libdir"][0])')
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
check "plain cc with pkg-config" sh -c \
  "cc -std=c11 -D_POSIX_C_SOURCE=200809L -o '$work/app' '$here/app.c' \$(pkg-config --cflags --libs authloop) &&
   LD_LIBRARY_PATH='$prefix/$libdir' '$work/app'"
# libauthloop.a into the program, its dependencies as the system's shared libraries
check "a static link of authloop (docs: README, Static linking)" sh -c \
  "meson setup '$work/bs' '$src' --prefix='$work/sprefix' -Ddefault_library=static -Dtests=false -Dsamples=false >/dev/null &&
   ninja -C '$work/bs' >/dev/null && meson install -C '$work/bs' --quiet &&
   test ! -e '$work/sprefix/$libdir/libauthloop.so' &&
   PKG_CONFIG_PATH='$work/sprefix/$libdir/pkgconfig' sh -c 'cc -std=c11 -D_POSIX_C_SOURCE=200809L -o \"$work/sapp\" \"$here/app.c\" \$(pkg-config --cflags authloop) \"$work/sprefix/$libdir/libauthloop.a\" \$(pkg-config --libs libuv libcurl jansson) -lmbedcrypto' &&
   '$work/sapp' && ! ldd '$work/sapp' | grep -q authloop"
check "the shared build installs no static archive" test ! -e "$prefix/$libdir/libauthloop.a"
check "CMake find_package(authloop CONFIG)" sh -c \
  "cmake -S '$here' -B '$work/c' -DCMAKE_PREFIX_PATH='$prefix' >/dev/null && cmake --build '$work/c' >/dev/null &&
   LD_LIBRARY_PATH='$prefix/$libdir' '$work/c/app' && { test ! -e '$work/c/glib_app' || LD_LIBRARY_PATH='$prefix/$libdir' '$work/c/glib_app'; }"
# Before 1.0 a minor release is a new ABI: CMake must not take 0.2 for 0.1.
mkdir -p "$work/v"
printf 'cmake_minimum_required(VERSION 3.16)\nproject(v C)\nfind_package(authloop ${WANT} CONFIG)\nmessage(STATUS "found=${authloop_FOUND}")\n' > "$work/v/CMakeLists.txt"
ver=$(sed -n "s/^  version: '\\(.*\\)',/\\1/p" "$src/meson.build")
check "CMake takes $ver for ${ver%.*}, not 0.1 nor 1.0" sh -c \
  "for w in ${ver%.*}:1 0.1:0 1.0:0 99:0; do
     rm -rf '$work/v/b'; cmake -S '$work/v' -B '$work/v/b' -DWANT=\${w%%:*} -DCMAKE_PREFIX_PATH='$prefix' > '$work/v/out' 2>&1 || exit 1
     grep -q \"found=\${w#*:}\" '$work/v/out' || { echo \"asked \${w%%:*}: want found=\${w#*:}\"; cat '$work/v/out'; exit 1; }
   done"
mkdir -p "$work/parent/subprojects"
cp "$here/parent/meson.build" "$work/parent/" && cp "$here/app.c" "$work/" && ln -s "$src" "$work/parent/subprojects/authloop"
check "a meson parent with authloop as a subproject" sh -c \
  "cd '$work/parent' && PATH=/usr/bin:/bin meson setup b >/dev/null && ninja -C b >/dev/null &&
   meson test -C b --list 2>/dev/null | grep -qv authloop && ! meson test -C b --list 2>/dev/null | grep -q 'authloop:' &&
   ./b/app && meson install -C b --destdir '$work/pdest' --quiet && test -z \"\$(find '$work/pdest' -type f 2>/dev/null)\""
