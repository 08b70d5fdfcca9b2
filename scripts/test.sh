#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole test suite: installs what is missing, then runs every unit and
# integration test three times: a normal build, an ASan+UBSan build, and the
# normal build under valgrind; and fuzzes every parser for 8 s each. Ends
# with one line: "total: N passed, N failed".
#   scripts/test.sh            all four stages
#   scripts/test.sh --quick    the normal build only
set -uo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

scripts/deps.sh || exit 1
status=0
logs=()

stage() { # stage NAME BUILD_DIR [meson test args...]
  local name=$1 dir=$2
  shift 2
  echo "== $name"
  if ! meson test -C "$dir" --print-errorlogs --logbase "$name" "$@"; then
    status=1
  fi
  # meson names the log NAME.json, or NAME-WRAPPER.json under --wrap
  logs+=("$(ls -t "$dir"/meson-logs/"$name"*.json 2>/dev/null | head -n 1)")
}

scripts/build.sh build || exit 1
if [ $quick -eq 0 ]; then
  # the sanitizer and fuzzing builds compile while the plain tests wait on
  # their servers and timers, below them in priority (each reports what
  # failed when it is waited for)
  nice -n 10 scripts/build.sh build-sanitize -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug \
    >build/sanitize-build.log 2>&1 &
  sanitize_build=$!
  CC=clang CXX=clang++ nice -n 10 scripts/build.sh build-fuzz -Dfuzz=true -Dfuzz_seconds=8 -Db_sanitize=address,undefined \
    -Db_lundef=false -Dsamples=false -Dbuildtype=debugoptimized >build/fuzz-build.log 2>&1 &
  fuzz_build=$!
fi
# three at a time: most of these tests wait on servers and timers, not on the CPU
stage plain build --num-processes 3

if [ $quick -eq 0 ]; then
  wait $sanitize_build || { cat build/sanitize-build.log; exit 1; }
  # the C suites are what the sanitizer and valgrind stages are for: fidelity
  # runs Node, gtk and qt GUI programs under Xvfb, python Python (PyGObject), and consumers, abi and docs build
  # programs of their own with the plain compiler (a sanitized library cannot
  # load into them, and valgrind would only watch the shell that runs them)
  not_c="--no-suite fidelity --no-suite gtk --no-suite qt --no-suite python --no-suite alloc --no-suite consumers --no-suite abi --no-suite docs"
  # (GLib's slice allocator off: a freed GObject must be freed memory to ASan and valgrind)
  G_SLICE=always-malloc ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 stage sanitize build-sanitize $not_c --num-processes 3
  # every parser fuzzed from the committed seeds, 8 s each (clang, libFuzzer;
  # scripts/fuzz.sh runs them for longer)
  wait $fuzz_build || { cat build/fuzz-build.log; exit 1; }
  stage fuzz build-fuzz --suite fuzz
  # GLib's own suppressions and ours (test/suppressions/valgrind.supp: what
  # GLib, GIO and libsecret keep for the life of the process)
  vg="valgrind -q --num-callers=30 --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible"
  vg="$vg --show-leak-kinds=definite,indirect,possible --suppressions=$PWD/test/suppressions/valgrind.supp"
  [ -f /usr/share/glib-2.0/valgrind/glib.supp ] && vg="$vg --suppressions=/usr/share/glib-2.0/valgrind/glib.supp"
  # (waits for the loop last 4 times longer, as meson's timeouts do)
  # (three at a time: most of these wait on timers, as in the plain stage)
  G_SLICE=always-malloc AUTHLOOP_TEST_TIME_SCALE=4 stage valgrind build $not_c --no-suite keyring --no-suite samples \
    --timeout-multiplier=4 --num-processes 3 --wrap="$vg"
  # the keyring tests run their program on a private bus (test/keyring/run.sh),
  # the samples' from a script (scripts/oidc-demo.sh): valgrind wraps the
  # program, not the shell around it
  G_SLICE=always-malloc AUTHLOOP_TEST_TIME_SCALE=4 AUTHLOOP_TEST_WRAP="$vg" stage valgrind-keyring build --suite keyring \
    --suite samples --timeout-multiplier=4
fi

python3 scripts/summary.py "${logs[@]}" || status=1
exit $status
