#!/bin/sh
# SPDX-License-Identifier: MIT
# The names a man page documents: its NAME line, before " - ", comma-separated.
# Prints them comma-separated, for meson (page aliases) and test/man/check.sh.
awk '/^# NAME/ { on = 1; next } on && /^# / { exit } on && NF { print }' "$1" |
  tr '\n' ' ' | sed 's/ - .*//; s/, */,/g; s/ *$//'
echo
