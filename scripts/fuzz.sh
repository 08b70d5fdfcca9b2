#!/usr/bin/env bash
# Fuzzes every parser of what a server or a session file can hand authloop,
# with libFuzzer, ASan and UBSan (clang).   scripts/fuzz.sh [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
scripts/deps.sh
command -v clang >/dev/null || { sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo; $sudo apt-get install -y -qq clang >/dev/null; }
CC=clang CXX=clang++ scripts/build.sh build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
  -Db_lundef=false -Dsamples=false -Dbuildtype=debugoptimized
for t in answers store; do
  mkdir -p "build-fuzz/corpus-$t"
  echo "== fuzz_$t for ${seconds}s"
  UBSAN_OPTIONS=halt_on_error=1 "build-fuzz/test/fuzz_$t" -max_total_time="$seconds" \
    -max_len=4096 -print_final_stats=1 "build-fuzz/corpus-$t" 2>&1 | tail -4
done
