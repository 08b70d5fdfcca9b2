#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fuzzes every parser and builder of what a server, a session file or an
# application hands authloop, with libFuzzer, ASan and UBSan (clang):
#   scripts/fuzz.sh [SECONDS_PER_TARGET]        (default 60; the test suite runs 20)
# Each target starts from the committed seeds (test/fuzz/corpus: real answers
# of every dialect, session files) with a dictionary of their keys. A crash
# fails the run and leaves its input in build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
scripts/deps.sh
CC=clang CXX=clang++ scripts/build.sh build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
  -Db_lundef=false -Dsamples=false -Dtests=true -Dbuildtype=debugoptimized
status=0
for t in answers login request jwt store; do
  work="build-fuzz/corpus-$t"
  mkdir -p "$work"
  cp -n test/fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
  echo "== fuzz_$t for ${seconds}s"
  if ! (cd build-fuzz && UBSAN_OPTIONS=halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
    "./test/fuzz_$t" -max_total_time="$seconds" -max_len=8192 -timeout=10 \
    -dict="../test/fuzz/$t.dict" -print_final_stats=1 "corpus-$t" >"fuzz-$t.log" 2>&1); then
    echo "fuzz_$t FAILED:"; tail -40 "build-fuzz/fuzz-$t.log"; status=1
  fi
  grep -E "^stat::number_of_executed_units|^stat::new_units_added|cov:" "build-fuzz/fuzz-$t.log" |
    tail -3 | sed 's/^/   /'
done
exit $status
