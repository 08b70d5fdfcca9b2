#!/bin/sh
# SPDX-License-Identifier: MIT
# The man pages (docs/man) against the code they document. TAP output.
#   check.sh SOURCE_DIR BUILD_DIR
# - every exported function and every options _INIT macro is documented in
#   exactly one page's NAME, and every name there exists;
# - each function page has its sections; the overview its own;
# - each page's EXAMPLE builds and links against this build's library with
#   -Wall -Wextra -Werror;
# - the error table of authloop_strerror(3) is the header's, code for code;
# - the built pages render with groff without a warning, and every page they
#   refer to (name(3)) exists.
set -u
src=$1
build=$2
man=$src/docs/man
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() {
  n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"
  [ -s "$work/log" ] && sed 's/^/# /' "$work/log" | head -30
}
: > "$work/log"

# 1. names
for f in "$man"/*.3.md; do sh "$man/names.sh" "$f" | tr ',' '\n'; done | sort > "$work/named"
{ cat "$src"/abi/*.symbols; grep -ho 'AUTHLOOP_[A-Z]*_OPTIONS_INIT' "$src/include/authloop.h"; } |
  sort -u > "$work/public"
sort -u "$work/named" > "$work/named.u"
if ! cmp -s "$work/named" "$work/named.u"; then
  comm -23 "$work/named" "$work/named.u" > "$work/log"; notok "a name is documented twice"
else
  ok "no name is documented twice"
fi
comm -23 "$work/public" "$work/named.u" > "$work/log"
if [ -s "$work/log" ]; then notok "exported but without a man page"; else ok "every export and _INIT macro has a page"; fi
: > "$work/log"
for name in $(cat "$work/named.u"); do
  [ "$name" = authloop ] && continue
  grep -qw "$name" "$src/include/authloop.h" "$src/include/authloop-glib.h" "$src/include/authloop-session.h" \
    "$build/include/authloop-version.h" || echo "$name" >> "$work/log"
done
if [ -s "$work/log" ]; then notok "a page names something the headers lack"; else ok "every name on a page is in the headers"; fi

# 2. sections
: > "$work/log"
for f in "$man"/*.3.md; do
  case $(basename "$f") in
    authloop.3.md) want="NAME|SYNOPSIS|DESCRIPTION|EXAMPLE|SEE ALSO" ;;
    *) want="NAME|SYNOPSIS|DESCRIPTION|RETURN VALUE|ERRORS|THREADS AND CALLBACKS|EXAMPLE|SEE ALSO" ;;
  esac
  echo "$want" | tr '|' '\n' | while read -r sec; do
    grep -q "^# $sec\$" "$f" || echo "$(basename "$f"): no $sec" >> "$work/log"
  done
done
if [ -s "$work/log" ]; then notok "sections"; else ok "every page has its sections"; fi

# 3. examples
pkgs="libuv"
pkg-config --exists gio-2.0 && pkgs="$pkgs gio-2.0"
: > "$work/log"
count=0
for f in "$man"/*.3.md; do
  page=$(basename "$f" .3.md)
  awk '/^# EXAMPLE/ { on = 1; next } on && /^# / { exit }
       on && /^```c$/ { code = 1; next } code && /^```$/ { exit } code { print }' "$f" > "$work/$page.c"
  if [ ! -s "$work/$page.c" ]; then
    echo "$page: no C example" >> "$work/log"
    continue
  fi
  libs="-lauthloop"
  case $page in authloop_glib_* | authloop_session_*)
    [ -e "$build/libauthloop-glib.so" ] || continue
    libs="-lauthloop-glib -lauthloop" ;;
  esac
  count=$((count + 1))
  ${CC:-cc} -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -I"$src/include" \
    -I"$build/include" $(pkg-config --cflags $pkgs) -o "$work/$page" "$work/$page.c" \
    -L"$build" $libs $(pkg-config --libs $pkgs) -Wl,-rpath,"$build" >> "$work/log" 2>&1 ||
    echo "$page: the example does not build" >> "$work/log"
done
if grep -q ': ' "$work/log"; then notok "examples"; else ok "the $count examples build and link"; fi

# 4. the error table
: > "$work/log"
cat > "$work/codes.c" <<'C'
#include <authloop.h>
#include <stdio.h>
int main(void) {
#define XX(suffix, value, name, msg) printf("**AUTHLOOP_%s** (%d, \"%s\")\n:   %s.\n\n", #suffix, value, name, msg);
  AUTHLOOP_ERRNO_MAP(XX)
  return 0;
}
C
${CC:-cc} -I"$src/include" -I"$build/include" $(pkg-config --cflags libuv) -o "$work/codes" \
  "$work/codes.c" >> "$work/log" 2>&1 && "$work/codes" > "$work/codes.md"
awk '/^# CODES/ { on = 1; next } on && /^# / { exit } on' "$man/authloop_strerror.3.md" |
  sed '/^$/d' > "$work/page-codes"
sed '/^$/d' "$work/codes.md" > "$work/header-codes"
if diff -u "$work/header-codes" "$work/page-codes" > "$work/log"; then
  ok "authloop_strerror(3) lists the header's codes, values, names and messages"
else
  notok "authloop_strerror(3) and the header's codes differ"
fi

# 5. rendering and references
: > "$work/log"
built=0
for f in "$build"/docs/man/*.3; do
  [ -e "$f" ] || continue
  built=$((built + 1))
  groff -man -ww -z "$f" >> "$work/log" 2>&1
  for ref in $(grep -o 'authloop[a-z_]*\\f\[R\](3)' "$f" | sed 's/\\f.*//' | sort -u); do
    [ -e "$build/docs/man/$ref.3" ] || grep -qx "$ref" "$work/named.u" ||
      echo "$(basename "$f"): refers to $ref(3), which is no page" >> "$work/log"
  done
done
if [ "$built" -eq 0 ]; then
  echo "no pages in $build/docs/man" > "$work/log"; notok "built pages"
elif [ -s "$work/log" ]; then notok "rendering or references"
else ok "$built built pages render without a warning; their references exist"; fi

echo "1..$n"
[ "$fails" -eq 0 ]
