#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The "system browser" of the GTK sample's test: the desktop's handler for
# https there (a .desktop file and mimeapps.list in the test's home). It logs
# each URL it is given to BROWSER_LOG. Given the issuer's authorization URL,
# it is the user: the test OP's scripted user signs in as alice and consents
# through the OP's own pages, and the redirect it ends in goes back to the
# app as a browser's would:
#   1. first a forged one (the same with another state), by starting the
#      app with it (GTK_LOGIN), which passes it to the window that waits and
#      exits: it must change nothing;
#   2. then the real one through the desktop (gio open), which finds the
#      app's .desktop file by its scheme and starts it.
# Any other page (the issuer's sign-out page) is only logged.
#   browser.sh URL      (env: BROWSER_LOG OIDC_ISSUER OIDC_CA GTK_LOGIN)
set -uo pipefail
url=$1
exec >>"$BROWSER_LOG.out" 2>&1
printf '%s\n' "$url" >>"$BROWSER_LOG"
case "$url" in
"$OIDC_ISSUER"/auth\?*) ;;
*) exit 0 ;;
esac
ask=$(node -e 'console.log(JSON.stringify({url: process.argv[1], login: "alice"}))' "$url")
location=$(curl -sS --fail --cacert "$OIDC_CA" -H 'Content-Type: application/json' \
  --data "$ask" "$OIDC_ISSUER/__user/authorize" |
  node -e 'let t = ""; process.stdin.on("data", (d) => (t += d)).on("end", () => console.log(JSON.parse(t).location || ""))')
echo "redirect: $location"
case "$location" in
org.authloop.loginsample:*state=*) ;;
*)
  echo "no redirect to the app"
  exit 1
  ;;
esac
"$GTK_LOGIN" "$(sed 's/\([?&]state=\)[^&]*/\1forged/' <<<"$location")"
gio open "$location"
