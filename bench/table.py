#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reads the benchmarks' JSON lines (bench/run.sh) and prints one table: the
instruction counts (the headline), CPU as min / median / max over the rounds
with the load average they ran under, ratios against the baselines measured
in the same run, latency, and sessions at scale with memory per session as
the slope between the two sizes. Targets are docs/performance.md's."""
import json
import statistics
import sys

lines = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
rows = []


def row(what, value, target=""):
    rows.append((what, value, target))


def spread(values, fmt="{:.0f}"):
    v = sorted(values)
    return f"{fmt.format(v[0])} / {fmt.format(statistics.median(v))} / {fmt.format(v[-1])}"


# ---- instructions per cycle --------------------------------------------------------------
ic = {(r["program"], r["mode"], r["transport"], r["connections"]): r
      for r in lines if r["bench"] == "icount"}
for (program, mode, transport, conn), r in sorted(ic.items()):
    if program != "cycles" or (program, mode, transport, conn) not in ic:
        continue
    raw = ic.get(("raw", mode, transport, conn))
    if not raw:
        continue
    label = f"{mode} {transport}" + (" (Connection: close, as real Kuzzle)" if conn == "close" else "")
    a, l = r["instructions_per_cycle"], raw["instructions_per_cycle"]
    row(f"instructions per cycle, {label}",
        f"{a:,} vs {l:,} = {a / l:.2f} (requests {r['requests_per_cycle']} vs {raw['requests_per_cycle']})",
        "<= 1.30" if conn == "keep" else "")

# ---- CPU -------------------------------------------------------------------------------------
def cpu(bench, key="cpu_us_per_cycle", transport="tls"):
    return [r[key] for r in lines if r["bench"] == bench and r.get("transport", "tls") == transport]


def first(bench, key, default=None, transport="tls"):
    v = [r.get(key, default) for r in lines
         if r["bench"] == bench and r.get("transport", "tls") == transport]
    return v[0] if v else default


loads = [float(r["load"]) for r in lines if "load" in r]
if loads:
    row("load average (1 min) during the CPU rounds", spread(loads, "{:.2f}"))
for transport, tname in (("tls", "TLS"), ("plain", "plain HTTP")):
    for mode in ("gateway", "kuzzle"):
        a, l = cpu(f"authloop-{mode}", transport=transport), cpu(f"raw-{mode}", transport=transport)
        if not a or not l:
            continue
        req = first(f"authloop-{mode}", "requests_per_cycle", transport=transport)
        lreq = first(f"raw-{mode}", "requests_per_cycle", transport=transport)
        clients = first(f"authloop-{mode}", "clients", 1, transport=transport)
        row(f"CPU per cycle, {mode} {tname}, authloop (min / median / max)",
            f"{spread(a)} us ({req} requests; user"
            f" {spread(cpu(f'authloop-{mode}', 'user_us_per_cycle', transport))},"
            f" system {spread(cpu(f'authloop-{mode}', 'sys_us_per_cycle', transport))}"
            + (f"; {clients} clients side by side" if clients > 1 else "") + ")")
        like = clients == 1
        row(f"CPU per cycle, {mode} {tname}, the limit"
            + ("" if like else ", one client, its refresh at once"),
            f"{spread(l)} us ({lreq} requests; user"
            f" {spread(cpu(f'raw-{mode}', 'user_us_per_cycle', transport))},"
            f" system {spread(cpu(f'raw-{mode}', 'sys_us_per_cycle', transport))})")
        # per round: the two ran side by side, under the same load; a ratio only
        # when they did the same work (authloop's Kuzzle rounds run many clients
        # that wait out the second; the limit's one that does not)
        if like:
            row(f"CPU authloop / limit, {mode} {tname}, per round",
                spread([x / y for x, y in zip(a, l)], "{:.2f}"))
# authloop making the SDK's requests (option userinfo -1: no getCurrentUser)
mine = cpu("authloop-kuzzle-sdk-requests")
if mine:
    req = first("authloop-kuzzle-sdk-requests", "requests_per_cycle")
    row("CPU per cycle, kuzzle TLS, authloop making the SDK's requests (userinfo -1)",
        f"{spread(mine)} us ({req} requests; user"
        f" {spread(cpu('authloop-kuzzle-sdk-requests', 'user_us_per_cycle'))},"
        f" system {spread(cpu('authloop-kuzzle-sdk-requests', 'sys_us_per_cycle'))})")
floor = cpu("raw-kuzzle-clients-sdk-requests")
if floor:
    row("CPU per cycle, kuzzle TLS, the limit making the SDK's requests, as many clients side by side",
        f"{spread(floor)} us ({first('raw-kuzzle-clients-sdk-requests', 'requests_per_cycle')} requests;"
        f" user {spread(cpu('raw-kuzzle-clients-sdk-requests', 'user_us_per_cycle'))},"
        f" system {spread(cpu('raw-kuzzle-clients-sdk-requests', 'sys_us_per_cycle'))})")
    if mine:
        row("CPU authloop / the limit, both making the SDK's requests on as many clients, per round",
            spread([x / y for x, y in zip(mine, floor)], "{:.2f}"))
for bench, how, target in (
        ("kuzzle-sdk-waits", "each of its clients waiting out the second as authloop's do", "<= 0.15"),
        ("kuzzle-sdk", "one client, its refresh at once (its own way)", "")):
    sdk = cpu(bench)
    if not sdk:
        continue
    req = first(bench, "requests_per_cycle")
    clients = first(bench, "clients", 1)
    row(f"CPU per cycle, kuzzle-sdk on Node, connect included, {how}",
        f"{spread(sdk)} us ({req} requests; user {spread(cpu(bench, 'user_us_per_cycle'))},"
        f" system {spread(cpu(bench, 'sys_us_per_cycle'))}; {clients} client(s))")
    # the target is read from authloop making the SDK's own requests, like for
    # like; authloop's default (getCurrentUser at login, one request more) beside it
    for who, label, tgt in (("authloop-kuzzle-sdk-requests", "authloop making the SDK's requests",
                             target), ("authloop-kuzzle", "authloop as it comes (4 requests)", ""),
                            ("raw-kuzzle-clients-sdk-requests",
                             "the limit making the SDK's requests (the floor)", "")):
        if not cpu(who):
            continue
        row(f"CPU {label} / kuzzle-sdk ({how}), per round",
            spread([x / y for x, y in zip(cpu(who), sdk)], "{:.2f}"), tgt if mine else target)
        # the kernel's work (system time) is the loopback's and the machine's, per request
        row(f"user CPU {label} / kuzzle-sdk ({how}), per round",
            spread([x / y for x, y in zip(cpu(who, "user_us_per_cycle"),
                                          cpu(bench, "user_us_per_cycle"))], "{:.2f}"))

# ---- latency ---------------------------------------------------------------------------------
lat = [r for r in lines if r["bench"] == "latency-paired"]
if lat:
    row("login latency, p50 per round: authloop / the limit",
        " ; ".join(f"{r['authloop_p50_us']:.0f} / {r['raw_p50_us']:.0f} us" for r in lat))
    row("login latency added, p50 of the paired differences (min / median / max of rounds)",
        f"{spread([r['added_p50_us'] for r in lat], '{:+.1f}')} us "
        f"(p25 {spread([r['added_p25_us'] for r in lat], '{:+.0f}')}, "
        f"p75 {spread([r['added_p75_us'] for r in lat], '{:+.0f}')})", "<= 10 us")

# ---- scale -----------------------------------------------------------------------------------
for mode in ("gateway", "kuzzle"):
    runs = sorted((r for r in lines if r["bench"] == "scale" and r.get("mode") == mode),
                  key=lambda r: r["sessions"])
    if not runs:
        continue
    big = runs[-1]
    row(f"{mode}: sessions logged in on one ctx", f"{big['sessions']:,} ({big['failed']} failed, "
        f"logins took {big['login_s']:.0f} s)")
    if len(runs) >= 2 and runs[-1]["sessions"] > runs[0]["sessions"]:
        small = runs[0]
        per = (big["peak_rss_kib"] - small["peak_rss_kib"]) * 1024 / (big["sessions"] - small["sessions"])
        tokens = big["token_bytes_per_session"]
        row(f"{mode}: peak RSS per session (slope {small['sessions']:,} -> {big['sessions']:,})",
            f"{per:.0f} B = tokens {tokens:.0f} B + {per - tokens:.0f} B", "<= tokens + 2048 B")
    row(f"{mode}: TCP connections used", str(big["tcp_connections"]))
    row(f"{mode}: loop wake-ups per second, nothing due",
        f"{big['idle_wakeups_per_s']:.2f} over {big['idle_s']:.0f} s" if big["idle_s"] > 0
        else "not measured (a refresh was due too soon)", "0")
    row(f"{mode}: refreshes, each within a minute of its due time",
        f"{big['refreshed']:,} of {big['sessions']:,}, {big['late_refreshes']} late, "
        f"the latest {big['max_late_s']:+.1f} s from its due time", "0 late")
    steps = big.get("timeline") or []
    if steps:
        # [s, answered, latest, client busy, server CPU, server GC, server loop hold ms, warnings]
        busiest = max(steps, key=lambda st: st[1])
        row(f"{mode}: refresh phase, busiest 10 s",
            f"{busiest[1] / 10:,.0f} a second; client loop {busiest[3]:.0%} busy, "
            f"server CPU {busiest[4]:.0%} (logins {big.get('login_rate') or 'unpaced'}"
            f"{' a second' if big.get('login_rate') else ''}); {big.get('warnings', 0)} warnings")
    row(f"{mode}: most requests in flight at once", str(big["max_in_flight"]), "<= 8")

w = max(len(r[0]) for r in rows)
v = max(len(r[1]) for r in rows)
print(f"{'measure':<{w}}  {'value':<{v}}  target")
for what, value, target in rows:
    print(f"{what:<{w}}  {value:<{v}}  {target}")
