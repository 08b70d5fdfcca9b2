#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Instructions per cycle under callgrind: (I(300 cycles) - I(100 cycles)) / 200, so start-up
# and the first handshake cancel out (BENCH_ICOUNT_LO and BENCH_ICOUNT_HI change 100 and
# 300). Counts agree within a fraction of a percent between runs, where CPU time moves with
# the machine's load.
#   bench/icount.sh BUILD_DIR PROGRAM MODE TRANSPORT [KUZZLE_CONNECTIONS]
#     PROGRAM: cycles (authloop) | raw (the limit); MODE: gateway | kuzzle
#     TRANSPORT: tls | plain; KUZZLE_CONNECTIONS: keep (default) | close (as real Kuzzle)
# Prints one JSON line.
set -euo pipefail
b=$1 program=$2 mode=$3 transport=$4 conn=${5:-keep}
cd "$(dirname "$0")/.."
state=$(mktemp -d)
args=(--port 0 --state-dir "$state" --stdin-lifeline --keep-alive-ms 600000)
[ "$conn" = keep ] && args+=(--kuzzle-keep-alive)
[ "$transport" = plain ] && args+=(--plain)
coproc SERVER { exec node test/server/server.mjs "${args[@]}"; }
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$state"' EXIT
read -r ready <&"${SERVER[0]}"
port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' <<<"$ready")
if [ "$transport" = plain ]; then url="http://127.0.0.1:$port"; else url="https://127.0.0.1:$port"; fi
# a Kuzzle refresh waits out the second its token was issued in: authloop's
# does, and so does the limit's here, so that both meet the server alike
extra=()
[ "$program" = raw ] && [ "$mode" = kuzzle ] && extra=(--wait-ms 1000)
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$b/bench/bench_$program" \
    --url "$url" --ca "$state/ca.pem" --mode "$mode" --n "$1" "${extra[@]}" 2>&1 >/dev/null |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
# the requests of one cycle, as the server counted them
requests() {
  node -e '
    const https = require("node:https"), http = require("node:http");
    const [url, ca] = process.argv.slice(1);
    const mod = url.startsWith("https") ? https : http;
    const opts = url.startsWith("https") ? { ca: require("node:fs").readFileSync(ca) } : {};
    mod.get(`${url}/__test/stats`, opts, (res) => {
      let t = ""; res.on("data", (c) => t += c);
      res.on("end", () => {
        const r = JSON.parse(t).routes;
        console.log(Object.entries(r).filter(([k]) => !k.startsWith("/__test")).reduce((a, [, v]) => a + v, 0));
      });
    });' "$url" "$state/ca.pem"
}
lo=${BENCH_ICOUNT_LO:-100} hi=${BENCH_ICOUNT_HI:-300}
a=$(count "$lo")
before=$(requests)
c=$(count "$hi")
after=$(requests)
# a count or a request total that is not a number is a failed run, said here
for v in "$a" "$c" "$before" "$after"; do
  [[ $v =~ ^[0-9]+$ ]] || { echo "icount.sh: no count ($program $mode $transport $conn)" >&2; exit 1; }
done
per_cycle=$(python3 -c "print(round(($after - $before) / $hi, 2))")
printf '{"bench":"icount","program":"%s","mode":"%s","transport":"%s","connections":"%s","instructions_per_cycle":%d,"requests_per_cycle":%s}\n' \
  "$program" "$mode" "$transport" "$conn" $(( (c - a) / (hi - lo) )) "$per_cycle"
