#!/usr/bin/env bash
# hkp-gateway(8) says what the binary does: every option of `hkp-gateway --help` and every
# command of `hkp-gateway cache --help` (with each of its operands) is in docs/hkp-gateway.8.md,
# and the page built from it renders without a warning from man.
#   check_man_page.sh SOURCE_DIR GATEWAY_BINARY [BUILT_PAGE]
set -euo pipefail
src=$1
gateway=$2
page=${3:-}
md=$src/docs/hkp-gateway.8.md
fail() { echo "man page: $*" >&2; exit 1; }
# Options: the long names in the top-level help ("  -c,--config FILE   ...").
options=$("$gateway" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u)
[ -n "$options" ] || fail "hkp-gateway --help lists no options"
for o in $options; do
  grep -qF -- "**$o**" "$md" || fail "docs/hkp-gateway.8.md does not describe $o"
done
# Commands: the lines under "Subcommands:" in `cache --help`; each with its operands.
verbs=$("$gateway" cache --help | sed -n '/^Subcommands:/,/^$/p' | awk 'NF && !/^Subcommands:/ {print $1}')
[ "$(wc -w <<<"$verbs")" -ge 8 ] || fail "cache --help lists only: $verbs"
for v in $verbs; do
  usage=$("$gateway" cache "$v" --help | sed -n 's/^Usage: hkp-gateway cache [a-z]* \[OPTIONS\] *//p')
  heading="**cache $v**"
  line=$(grep -F -- "$heading" "$md" | head -1) || fail "docs/hkp-gateway.8.md has no $heading"
  for operand in $(grep -oE '[A-Z]+' <<<"$usage"); do
    grep -qF "*$operand*" <<<"$line" || fail "$heading in the manual lacks its operand $operand"
  done
done
if [ -n "$page" ]; then
  warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null)
  [ -z "$warnings" ] || fail "man warns about $page: $warnings"
fi
echo "man page: $(wc -w <<<"$options") options and $(wc -w <<<"$verbs") cache commands described"
