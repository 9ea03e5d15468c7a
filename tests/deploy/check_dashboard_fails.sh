#!/usr/bin/env bash
# The dashboard check can fail: a copy naming a metric the gateway does not export, one with a
# query that does not parse, one with a hard-coded window and one with a query that ignores the
# $instance variable must each be refused.
#   check_dashboard_fails.sh SOURCE_DIR
set -uo pipefail
src=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The whole of gateway/: the check reads every family a component declares there. (With
# metrics.cpp alone, every copy failed for that reason, and none of these cases proved anything.)
mkdir -p "$work/deploy/grafana"
cp -r "$src/gateway" "$work/"
# The unbroken dashboard passes here, so each refusal below is the breakage's.
cp "$src/deploy/grafana/hkp-gateway.json" "$work/deploy/grafana/"
"$here/check_dashboard.sh" "$work" >/dev/null || { echo "the unbroken copy was refused" >&2; exit 1; }
# refused WHAT SED_SCRIPT: a copy of the dashboard broken by SED_SCRIPT must not pass.
refused() {
  sed "$2" "$src/deploy/grafana/hkp-gateway.json" > "$work/deploy/grafana/hkp-gateway.json"
  if "$here/check_dashboard.sh" "$work" 2>/dev/null; then
    echo "$1 passed" >&2
    exit 1
  fi
}
refused "an unknown metric name" 's/hkp_gateway_cache_bytes/hkp_gateway_cache_byte_count/'
refused "a query that does not parse" 's/sum by (status) (rate(/sum by (status) (rate((/'
refused "a hard-coded window" 's/\[\$__rate_interval\]/[5m]/'
refused "a query without the instance filter" 's/,instance=~\\"\$instance\\"//'
echo "the dashboard check refuses all four broken copies"
