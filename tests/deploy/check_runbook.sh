#!/usr/bin/env bash
# Every alert in deploy/prometheus-rules.yml links its own section of docs/runbook.md
# (runbook_url "docs/runbook.md#<alert in lower case>"), and that section exists.
#   check_runbook.sh SOURCE_DIR
set -euo pipefail
src=$1
rules=$src/deploy/prometheus-rules.yml
runbook=$src/docs/runbook.md
alerts=$(sed -n 's/^ *- alert: *\([A-Za-z]*\).*/\1/p' "$rules")
[ -n "$alerts" ] || { echo "no alerts in $rules" >&2; exit 1; }
status=0
for a in $alerts; do
  anchor=$(tr '[:upper:]' '[:lower:]' <<<"$a")
  # The alert's own block: from its "- alert:" line to the next one.
  block=$(awk -v a="$a" '/^ *- alert:/ {on = ($3 == a)} on' "$rules")
  grep -q "runbook_url: \"docs/runbook.md#$anchor\"" <<<"$block" ||
    { echo "$a: no runbook_url \"docs/runbook.md#$anchor\"" >&2; status=1; }
  grep -q "^## $a\$" "$runbook" || { echo "$a: no \"## $a\" section in docs/runbook.md" >&2; status=1; }
done
[ "$status" -eq 0 ] && echo "runbook: $(wc -w <<<"$alerts") alerts, each with its section"
exit "$status"
