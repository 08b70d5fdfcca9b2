#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Counts test cases across meson test logs (TAP subtests where a test has
them, else the test itself) and prints one closing line:
    total: N passed, N failed
Exits 1 when anything failed or nothing ran."""
import json
import re
import sys

passed = failed = 0
notes = []  # what each failed test said, shown before the total (meson keeps only a log's tail)
for path in sys.argv[1:]:
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError:
        print(f"summary: no log {path}", file=sys.stderr)
        failed += 1
        continue
    for line in lines:
        t = json.loads(line)
        out = t.get("stdout") or ""
        oks = len(re.findall(r"^ok \d+", out, re.M))
        nots = len(re.findall(r"^not ok \d+", out, re.M))
        plan = re.search(r"^1\.\.(\d+)", out, re.M)
        if plan:
            passed += oks
            # a crash leaves planned cases unreported: count them as failed
            failed += nots + max(0, int(plan.group(1)) - oks - nots)
            if t["result"] != "OK" and nots == 0 and oks == int(plan.group(1)):
                failed += 1  # every case passed but the process did not (leak, exit code)
        elif t["result"] == "OK":
            passed += 1
        else:
            failed += 1
        if t["result"] != "OK":
            said = [l for l in (out + "\n" + (t.get("stderr") or "")).splitlines()
                    if re.match(r"\s*(not ok|#)|.*\b(error|ERROR|FAIL|Assert|timed out)", l)
                    and not l.startswith("==")]
            notes.append(f"{t.get('name', '?')} ({t['result']}):")
            notes.extend("  " + l[:300] for l in said[:20])
print("\n".join(notes)) if notes else None
print(f"total: {passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
