#!/bin/sh
# SPDX-License-Identifier: MIT
# authloop against mbedTLS 3.x, built from its source here (Debian ships only
# 2.28, which CI tests). Builds the given source twice, stock and with
# MBEDTLS_USE_PSA_CRYPTO, installs each into OUT/<variant>/prefix, builds
# authloop against each and runs the unit and pre-auth suites.
#   scripts/mbedtls3.sh MBEDTLS_SOURCE_DIR OUT_DIR
# The source is a release (mbedtls-3.6.x.tar.bz2, or a checkout of the tag
# with its framework submodule). Results: docs/mbedtls3.md.
set -eu
mbed_src=$(cd "${1:?mbedTLS source dir}" && pwd)
out=${2:?output dir}
mkdir -p "$out"
out=$(cd "$out" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
status=0
for variant in stock psa; do
  d=$out/$variant
  rm -rf "$d" && mkdir -p "$d"
  cp -a "$mbed_src" "$d/src"
  cfg=$d/src/include/mbedtls/mbedtls_config.h
  if [ $variant = psa ]; then
    sed -i 's|^//#define MBEDTLS_USE_PSA_CRYPTO$|#define MBEDTLS_USE_PSA_CRYPTO|' "$cfg"
    grep -q '^#define MBEDTLS_USE_PSA_CRYPTO$' "$cfg"
  else
    # (set -e ignores a negated command: the test must stop the script itself)
    if grep -q '^#define MBEDTLS_USE_PSA_CRYPTO$' "$cfg"; then
      echo "mbedtls3: the stock config already has MBEDTLS_USE_PSA_CRYPTO" >&2
      exit 1
    fi
  fi
  cmake -S "$d/src" -B "$d/build" -DCMAKE_BUILD_TYPE=Release -DENABLE_TESTING=OFF \
    -DENABLE_PROGRAMS=OFF -DUSE_SHARED_MBEDTLS_LIBRARY=ON -DUSE_STATIC_MBEDTLS_LIBRARY=OFF \
    -DCMAKE_INSTALL_PREFIX="$d/prefix" >"$d/cmake.log" 2>&1
  cmake --build "$d/build" -j"$(nproc)" >>"$d/cmake.log" 2>&1
  cmake --install "$d/build" >>"$d/cmake.log" 2>&1
  pc=$(ls -d "$d"/prefix/lib*/pkgconfig)
  PKG_CONFIG_PATH=$pc meson setup "$d/authloop" "$src" -Dglib=disabled -Dsamples=false \
    >"$d/meson.log" 2>&1
  ninja -C "$d/authloop" >>"$d/meson.log" 2>&1
  # the library under test is this mbedTLS, not Debian's
  ldd "$d/authloop/libauthloop.so" | grep -q "$d/prefix" || {
    echo "$variant: libauthloop.so is not linked to $d/prefix" >&2
    exit 1
  }
  echo "== mbedTLS $(sed -n 's/.*MBEDTLS_VERSION_STRING  *"\(.*\)"/\1/p' \
    "$d/prefix/include/mbedtls/build_info.h"), $variant"
  meson test -C "$d/authloop" --suite unit --print-errorlogs >"$d/test.log" 2>&1 || status=1
  meson test -C "$d/authloop" preauth --print-errorlogs >>"$d/test.log" 2>&1 || status=1
  grep -E '^ *[0-9]+/[0-9]+ ' "$d/test.log"
done
exit $status
