#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reads the benchmarks' JSON lines and prints one table: medians of the
repeated runs, ratios against the baselines measured in the same run, and the
targets of docs/performance.md."""
import json
import statistics
import sys

runs = {}
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    runs.setdefault(r["bench"], []).append(r)


def med(bench, key):
    return statistics.median(r[key] for r in runs[bench])


rows = []
def row(what, value, target=""):
    rows.append((what, value, target))


for mode in ("gateway", "kuzzle"):
    a, raw = med(f"authloop-{mode}", "cpu_us_per_cycle"), med(f"raw-{mode}", "cpu_us_per_cycle")
    row(f"{mode}: authloop CPU per cycle", f"{a:.0f} us")
    row(f"{mode}: raw libcurl-on-libuv CPU per cycle", f"{raw:.0f} us")
    row(f"{mode}: authloop / raw", f"{a / raw:.2f}", "<= 1.15")
sdk = med("kuzzle-sdk", "cpu_us_per_cycle")
row("kuzzle: kuzzle-sdk (Node) CPU per cycle", f"{sdk:.0f} us")
row("kuzzle: authloop / kuzzle-sdk", f"{med('authloop-kuzzle', 'cpu_us_per_cycle') / sdk:.2f}", "<= 0.2")
for p in ("p50", "p99"):
    added = med("authloop-latency", f"{p}_us") - med("raw-latency", f"{p}_us")
    row(f"login latency added, {p}", f"{added:+.0f} us "
        f"({med('authloop-latency', f'{p}_us'):.0f} vs {med('raw-latency', f'{p}_us'):.0f})")
s = runs["scale"][-1]
over = s["rss_per_session_bytes"] - s["token_bytes_per_session"]
row("scale: sessions logged in on one ctx", f"{s['sessions']} ({s['failed']} failed)")
row("scale: peak RSS per session", f"{s['rss_per_session_bytes']:.0f} B "
    f"(tokens {s['token_bytes_per_session']:.0f} B + {over:.0f} B)", "<= 4096 B + tokens")
row("scale: TCP connections used", str(s["tcp_connections"]))
row("scale: loop wake-ups per second, nothing due", f"{s['idle_wakeups_per_s']:.2f}", "0")
row("scale: refreshes (all due within a minute)", f"{s['refreshed']} over {s['refresh_spread_s']:.1f} s "
    f"(stddev {s['refresh_stddev_s']:.1f} s)")
row("scale: most refreshes in one second", str(s["most_refreshes_in_1s"]))
row("scale: most requests in flight at once", f"{s['max_in_flight']}", "<= max_host_connections (8)")

w = max(len(r[0]) for r in rows)
v = max(len(r[1]) for r in rows)
print(f"{'measure':<{w}}  {'value':<{v}}  target")
for what, value, target in rows:
    print(f"{what:<{w}}  {value:<{v}}  {target}")
