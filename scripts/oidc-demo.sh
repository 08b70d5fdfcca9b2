#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A device login against a local OpenID Provider (oidc-provider, started here
# with test/peers/oidc.mjs), with samples/device-login: it prints the URL and
# the code; open the URL in a browser (accept the test certificate), enter the
# code, sign in as alice or bob, and consent.
#   scripts/oidc-demo.sh          you play the user
#   scripts/oidc-demo.sh --auto   a scripted user completes it (for CI)
#   scripts/oidc-demo.sh --auto --build-dir DIR   with an existing build, nothing installed
set -euo pipefail
cd "$(dirname "$0")/.."
auto=0 build=""
while [ $# -gt 0 ]; do
  case "$1" in
    --auto) auto=1 ;;
    --build-dir) build=$2; shift ;;
    *) echo "usage: $0 [--auto] [--build-dir DIR]" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$build" ]; then
  scripts/deps.sh
  scripts/build.sh build
  build=build
fi
state=$(mktemp -d)
coproc OP { exec node test/peers/oidc.mjs --state-dir "$state" --stdin-lifeline 2>/dev/null; }
op=$OP_PID
trap 'kill $op 2>/dev/null || true; wait $op 2>/dev/null || true; rm -rf "$state"' EXIT
read -r ready <&"${OP[0]}" || { echo "oidc-demo: the OP did not start" >&2; exit 1; }
issuer=$(sed -n 's/.*"issuer":"\([^"]*\)".*/\1/p' <<<"$ready")
ca="$state/ca.pem"
echo "== OpenID Provider (oidc-provider) at $issuer; its test CA: $ca"
# (AUTHLOOP_TEST_WRAP: the suite's valgrind around the sample)
sample=(${AUTHLOOP_TEST_WRAP:-} "$build/samples/device-login" --issuer "$issuer" --ca "$ca"
  --client-id public --scope "openid offline_access profile email")
if [ $auto -eq 0 ]; then
  exec "${sample[@]}"
fi
# the scripted user: reads the code the sample prints, then signs in as alice
# on the OP's own pages (its /__user/device drives them, no browser)
out="$state/out"
mkfifo "$out"
"${sample[@]}" >"$out" &
app=$!
while IFS= read -r line; do
  echo "$line"
  case "$line" in
    user_code=*)
      code=${line#user_code=}
      curl -sS --fail --cacert "$ca" -H 'Content-Type: application/json' \
        -d "{\"user_code\":\"$code\",\"login\":\"alice\"}" "$issuer/__user/device" >/dev/null
      echo "== (the scripted user entered $code and signed in as alice)"
      ;;
  esac
done <"$out"
wait $app
