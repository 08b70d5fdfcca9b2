#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what building, testing and the demo need, and only what is missing.
# Debian packages via apt-get (as root, or through sudo).
set -euo pipefail

packages=(meson ninja-build pkg-config gcc g++ openssl valgrind curl
  libuv1-dev libcurl4-openssl-dev libjansson-dev libmbedtls-dev libcmocka-dev
  libglib2.0-dev libglib2.0-bin libsecret-1-dev
  gobject-introspection libgirepository1.0-dev gir1.2-glib-2.0 python3-gi gnome-keyring dbus-daemon libgtk-4-dev qt6-base-dev xvfb xauth clang libclang-rt-dev cmake abigail-tools pandoc groff-base man-db)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js runs the reference server; any install on PATH will do. npm installs
# the official client SDKs the fidelity tests run against it.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Exactly what the committed lock files say, when missing or stale: the
# official SDKs (test/server) and the third-party servers the suite runs
# authloop against (test/peers). Their install scripts are not run: none of
# them needs one (aws-sdk's only prints a notice).
for dir in test/server test/peers; do
  d="$(dirname "$0")/../$dir"
  if [ ! -f "$d/node_modules/.package-lock.json" ] ||
    ! cmp -s "$d/package-lock.json" "$d/node_modules/.lock-installed" 2>/dev/null; then
    echo "deps: npm ci in $dir"
    (cd "$d" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
    cp "$d/package-lock.json" "$d/node_modules/.lock-installed"
  fi
done
