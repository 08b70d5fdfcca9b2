#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every benchmark, side by side in one run, and one table of ratios.
#   bench/run.sh             2,000 cycles per side, repeated 3 times; 10,000 sessions
#   BENCH_N=500 BENCH_SESSIONS=2000 BENCH_REPEAT=1 bench/run.sh    a quick look
# Never part of the test suite: it measures, it does not pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${BENCH_N:-2000}
sessions=${BENCH_SESSIONS:-10000}
repeat=${BENCH_REPEAT:-3}

scripts/deps.sh
scripts/build.sh build-bench -Dbuildtype=release -Dbench=true -Dtests=false -Dsamples=false
b=build-bench/bench
state=$(mktemp -d)
results=$(mktemp)
# idle keep-alive connections stay open, so the idle wake-ups are authloop's own
coproc SERVER { exec node test/server/server.mjs --port 0 --state-dir "$state" --stdin-lifeline --keep-alive-ms 600000 --kuzzle-keep-alive; }
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$state" "$results"' EXIT
read -r ready <&"${SERVER[0]}"
port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' <<<"$ready")
url="https://127.0.0.1:$port"
ca="$state/ca.pem"

echo "== client cost: $n cycles (login -> refresh -> logout) x $repeat, interleaved" >&2
for _ in $(seq "$repeat"); do
  for mode in gateway kuzzle; do
    "$b/bench_cycles" --url "$url" --ca "$ca" --mode "$mode" --n "$n" >>"$results"
    "$b/bench_raw" --url "$url" --ca "$ca" --mode "$mode" --n "$n" >>"$results"
  done
  node bench/kuzzle-sdk.mjs "$port" "$ca" "$n" >>"$results"
done
echo "== latency added: 1,000 sequential logins each" >&2
"$b/bench_cycles" --url "$url" --ca "$ca" --mode latency --n 1000 >>"$results"
"$b/bench_raw" --url "$url" --ca "$ca" --mode latency --n 1000 >>"$results"
echo "== scale: $sessions sessions on one ctx (about two minutes)" >&2
"$b/bench_scale" --url "$url" --ca "$ca" --n "$sessions" >>"$results"
python3 bench/table.py "$results"
