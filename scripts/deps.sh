#!/usr/bin/env bash
# Installs what building, testing and the demo need, and only what is missing.
# Debian packages via apt-get (as root, or through sudo).
set -euo pipefail

packages=(meson ninja-build pkg-config gcc g++ openssl valgrind
  libuv1-dev libcurl4-openssl-dev libjansson-dev libmbedtls-dev libcmocka-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js runs the reference server; any install on PATH will do.
command -v node >/dev/null 2>&1 || missing+=(nodejs)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
