#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every benchmark, side by side in one run, and one table (bench/table.py):
#  - instructions per cycle under callgrind, authloop against the fair limit
#    (bench/raw.c), gateway and kuzzle, TLS and plain HTTP, and a real Kuzzle
#    (Connection: close): the headline, steady whatever the machine's load;
#  - CPU per cycle, min/median/max over interleaved rounds, with the load
#    average, TLS and plain HTTP, against the limit and (TLS) the official
#    kuzzle-sdk (connect included), authloop also making the SDK's requests;
#  - login latency added over the limit, as paired samples (bench/latency.c);
#  - sessions on one ctx: memory per session as the slope between two sizes,
#    loop wake-ups while nothing is due, refreshes against their due times.
#   (a Kuzzle cycle's refresh waits out the second its token was issued in:
#   a second of wall time each, so Kuzzle's instruction rows run fewer
#   cycles, and its CPU rounds run many clients side by side, --clients)
#   bench/run.sh            under five minutes
#   bench/run.sh --quick    about two minutes: fewer cycles, fewer logins, smaller sizes
#   BENCH_SCALE="200000 1000000" BENCH_TTL=900 BENCH_LOGIN_RATE=3000 BENCH_SCALE_MODES=gateway \
#     bench/run.sh    a million sessions, then the same with BENCH_SCALE_MODES=kuzzle (side by
#     side, the two would share the two cores). BENCH_LOGIN_RATE paces the logins so that
#     refreshes fall due no faster than the one reference server answers them (default: unpaced)
# Never part of the test suite: it measures, it does not pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1
if [ $quick -eq 1 ]; then
  n=${BENCH_N:-300} nk=${BENCH_NK:-60} kc=${BENCH_KUZZLE_CLIENTS:-20} rounds=${BENCH_ROUNDS:-3}
  logins=${BENCH_LOGINS:-300} sizes=${BENCH_SCALE:-"1000 4000"} ttl=${BENCH_TTL:-20}
  icount_lo=${BENCH_ICOUNT_LO:-20} icount_hi=${BENCH_ICOUNT_HI:-60} close_lo=3 close_hi=9 kuzzle_lo=3 kuzzle_hi=9
else
  n=${BENCH_N:-2000} nk=${BENCH_NK:-200} kc=${BENCH_KUZZLE_CLIENTS:-40} rounds=${BENCH_ROUNDS:-3}
  logins=${BENCH_LOGINS:-1000} sizes=${BENCH_SCALE:-"5000 20000"} ttl=${BENCH_TTL:-60}
  # (I(150) - I(50)) / 100 fits the run in five minutes; BENCH_ICOUNT_LO=100
  # BENCH_ICOUNT_HI=300 gives the issue's (I(300) - I(100)) / 200 (ratios within 2%)
  icount_lo=${BENCH_ICOUNT_LO:-50} icount_hi=${BENCH_ICOUNT_HI:-150}
  close_lo=5 close_hi=15 kuzzle_lo=5 kuzzle_hi=20
fi

scripts/deps.sh
scripts/build.sh build-bench -Dbuildtype=release -Dbench=true -Dtests=false -Dsamples=false
b=build-bench/bench
results=$(mktemp)
tmp=$(mktemp -d)
servers=()
cleanup() {
  # the servers, and any measurement still running (each icount.sh's server
  # goes with it: its standard input is the lifeline)
  for p in "${servers[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in $(jobs -p); do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp" "$results"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# waitall PID...: waits for every one; fails if any failed (a bare wait says 0)
waitall() {
  local p rc=0
  for p in "$@"; do wait "$p" || rc=1; done
  return $rc
}

# start_server NAME [server flags...]: sets NAME_url, NAME_port and NAME_ca
start_server() {
  local name=$1 state="$tmp/$1" ready port scheme=https
  shift
  rm -rf "$state"
  mkdir -p "$state"
  node --max-old-space-size=16000 test/server/server.mjs --port 0 --state-dir "$state" \
    --keep-alive-ms 600000 "$@" >"$state/ready" &
  servers+=($!)
  # its one line of output says where it listens (setup, not measured)
  until [ -s "$state/ready" ]; do
    kill -0 "${servers[-1]}" 2>/dev/null || { echo "run.sh: the server did not start" >&2; exit 1; }
    sleep 0.05
  done
  ready=$(head -n 1 "$state/ready")
  port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' <<<"$ready")
  [[ " $* " == *" --plain "* ]] && scheme=http
  printf -v "${name}_url" '%s://127.0.0.1:%s' "$scheme" "$port"
  printf -v "${name}_port" '%s' "$port"
  printf -v "${name}_ca" '%s' "$state/ca.pem"
}

# requests URL CA: how many requests the server has answered (test control excluded)
requests() {
  node -e '
    const [url, ca] = process.argv.slice(1);
    const mod = require(url.startsWith("https") ? "node:https" : "node:http");
    const opts = url.startsWith("https") ? { ca: require("node:fs").readFileSync(ca) } : {};
    mod.get(`${url}/__test/stats`, opts, (res) => {
      let t = ""; res.on("data", (c) => t += c);
      res.on("end", () => console.log(Object.entries(JSON.parse(t).routes)
        .filter(([k]) => !k.startsWith("/__test")).reduce((a, [, v]) => a + v, 0)));
    });' "$1" "$2"
}

# counted URL CA CMD...: runs CMD, adds requests per cycle and the load average to its JSON line
counted() {
  local url=$1 ca=$2 before after line cycles
  shift 2
  before=$(requests "$url" "$ca")
  line=$("$@")
  after=$(requests "$url" "$ca")
  cycles=$(sed -n 's/.*"n":\([0-9]*\).*/\1/p' <<<"$line")
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["requests_per_cycle"]=round((int(sys.argv[3])-int(sys.argv[2]))/int(sys.argv[4]),2); r["transport"]="plain" if sys.argv[5].startswith("http:") else "tls"; r["load"]=open("/proc/loadavg").read().split()[0]; print(json.dumps(r))' \
    "$line" "$before" "$after" "$cycles" "$url" >>"$results"
}

echo "== instructions per cycle (callgrind: (I($icount_hi) - I($icount_lo)) / $((icount_hi - icount_lo)) cycles;" \
  "Kuzzle: (I($kuzzle_hi) - I($kuzzle_lo)) / $((kuzzle_hi - kuzzle_lo));" \
  "closed connections: (I($close_hi) - I($close_lo)) / $((close_hi - close_lo)))" >&2
SECONDS=0
jobs_=()
for row in "kuzzle tls close" "kuzzle tls keep" "kuzzle plain keep" "gateway tls keep" "gateway plain keep"; do
  lo=$icount_lo hi=$icount_hi
  # a Kuzzle cycle's refresh waits out the second its token was issued in
  # (docs/decisions.md): a second of wall time each, so fewer cycles
  [[ $row == kuzzle* ]] && lo=$kuzzle_lo hi=$kuzzle_hi
  # a full handshake a request: 70 times a kept connection's cost, as steady
  [[ $row == *close ]] && lo=$close_lo hi=$close_hi
  for program in cycles raw; do
    # the Kuzzle rows, which mostly wait (both programs wait out the second
    # before a refresh), all at once first; then the others two at a time.
    # Instruction counts move with the load only through the server (how its
    # answers arrive in reads), so no more at once
    [[ $row == kuzzle* ]] || continue
    # a process group each (setsid): cleanup ends the callgrind run with it
    BENCH_ICOUNT_LO=$lo BENCH_ICOUNT_HI=$hi setsid bench/icount.sh build-bench $program $row \
      >"$tmp/icount-$program-${row// /-}" &
    jobs_+=($!)
  done
done
waitall "${jobs_[@]}" || { echo "run.sh: an instruction count failed" >&2; exit 1; }
jobs_=()
for row in "kuzzle tls close" "kuzzle tls keep" "kuzzle plain keep" "gateway tls keep" "gateway plain keep"; do
  [[ $row == kuzzle* ]] && continue
  lo=$icount_lo hi=$icount_hi
  for program in cycles raw; do
    # a process group each (setsid): cleanup ends the callgrind run with it
    BENCH_ICOUNT_LO=$lo BENCH_ICOUNT_HI=$hi setsid bench/icount.sh build-bench $program $row \
      >"$tmp/icount-$program-${row// /-}" &
    jobs_+=($!)
    if [ ${#jobs_[@]} -ge 2 ]; then
      waitall "${jobs_[0]}" || { echo "run.sh: an instruction count failed" >&2; exit 1; }
      jobs_=("${jobs_[@]:1}")
    fi
  done
done
waitall "${jobs_[@]}" || { echo "run.sh: an instruction count failed" >&2; exit 1; }
for f in "$tmp"/icount-*; do
  [ -s "$f" ] || { echo "run.sh: no count in $f" >&2; exit 1; }
done
cat "$tmp"/icount-* >>"$results"
echo "   ($SECONDS s)" >&2

start_server tls --kuzzle-keep-alive
start_server plain --kuzzle-keep-alive --plain
echo "== CPU per cycle: $n gateway and $nk Kuzzle cycles (login -> refresh -> logout; authloop's" \
  "Kuzzle cycles on $kc clients side by side), TLS and plain HTTP, $rounds rounds, interleaved" >&2
for _ in $(seq "$rounds"); do
  for transport in tls plain; do
    url_var="${transport}_url" ca_var="${transport}_ca"
    url=${!url_var} ca=${!ca_var}
    for mode in gateway kuzzle; do
      m=$n clients=1
      [ $mode = kuzzle ] && m=$nk clients=$kc
      counted "$url" "$ca" "$b/bench_cycles" --url "$url" --ca "$ca" --mode "$mode" --n "$m" \
        --clients "$clients"
      counted "$url" "$ca" "$b/bench_raw" --url "$url" --ca "$ca" --mode "$mode" --n "$m"
    done
  done
  # authloop making the requests the SDK makes (option userinfo -1: no
  # getCurrentUser after a login): the like-for-like row against the SDK
  counted "$tls_url" "$tls_ca" "$b/bench_cycles" --url "$tls_url" --ca "$tls_ca" --mode kuzzle --n "$nk" \
    --clients "$kc" --userinfo -1
  # the limit in that regime: as many clients on one multi handle, the same
  # requests and pauses (bench/raw_clients.c)
  counted "$tls_url" "$tls_ca" "$b/bench_raw_clients" --url "$tls_url" --ca "$tls_ca" --n "$nk" \
    --clients "$kc" --userinfo -1
  # the SDK as its own code goes (its refresh at once, Kuzzle then answers
  # with the same jwt), and as authloop goes (a client each, the second
  # waited out): the like-for-like row
  counted "$tls_url" "$tls_ca" node bench/kuzzle-sdk.mjs "$tls_port" "$tls_ca" "$((n / 2))"
  counted "$tls_url" "$tls_ca" node bench/kuzzle-sdk.mjs "$tls_port" "$tls_ca" "$nk" "$kc"
done
echo "   ($SECONDS s)" >&2
echo "== login latency: $logins paired logins (authloop and the limit in turn, one process), $rounds rounds" >&2
# the server on one core, the client on the other (when there are two): the
# scheduler then never runs the one in place of the other, which moved single
# logins by more than the difference measured
pin=()
if [ "$(nproc)" -ge 2 ]; then
  taskset -pc 0 "${servers[0]}" >/dev/null
  pin=(taskset -c 1)
fi
for _ in $(seq "$rounds"); do
  "${pin[@]}" "$b/bench_latency" --url "$tls_url" --ca "$tls_ca" --n "$logins" >>"$results"
done
[ ${#pin[@]} -gt 0 ] && taskset -pc 0-$(($(nproc) - 1)) "${servers[0]}" >/dev/null
echo "   ($SECONDS s)" >&2
scale_modes=${BENCH_SCALE_MODES:-gateway kuzzle}
echo "== sessions on one ctx: $sizes (token lifetime $ttl s)" >&2
for size in $sizes; do
  # the two dialects side by side, each with a fresh server of its own (what
  # a server keeps of earlier runs is not measured); memory, wake-ups and
  # in-flight counts are each process's own
  scale_pids=() scale_servers=()
  for mode in $scale_modes; do
    start_server "scale_$mode" --kuzzle-keep-alive --code-ttl 3600 --bench-probe
    idx=("${!servers[@]}")
    scale_servers+=("${idx[-1]}")
    url_var="scale_${mode}_url" ca_var="scale_${mode}_ca"
    "$b/bench_scale" --url "${!url_var}" --ca "${!ca_var}" --mode "$mode" --n "$size" --ttl "$ttl" \
      --idle-s 5 --login-rate "${BENCH_LOGIN_RATE:-0}" >"$tmp/scale-$mode-$size" &
    scale_pids+=($!)
  done
  waitall "${scale_pids[@]}" || { echo "run.sh: a sessions run failed ($size)" >&2; exit 1; }
  for mode in $scale_modes; do
    cat "$tmp/scale-$mode-$size" >>"$results"
  done
  for k in "${scale_servers[@]}"; do
    kill "${servers[k]}"
    unset "servers[$k]"
  done
done
echo "   ($SECONDS s)" >&2
python3 bench/table.py "$results"
