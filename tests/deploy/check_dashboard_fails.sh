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
mkdir -p "$work/deploy/grafana" "$work/gateway/observe"
cp "$src/gateway/observe/metrics.cpp" "$work/gateway/observe/"
sed 's/hkp_gateway_cache_bytes/hkp_gateway_cache_byte_count/' "$src/deploy/grafana/hkp-gateway.json" \
  > "$work/deploy/grafana/hkp-gateway.json"
if "$here/check_dashboard.sh" "$work" 2>/dev/null; then
  echo "an unknown metric name passed" >&2
  exit 1
fi
sed 's/sum by (status) (rate(/sum by (status) (rate((/' "$src/deploy/grafana/hkp-gateway.json" \
  > "$work/deploy/grafana/hkp-gateway.json"
if "$here/check_dashboard.sh" "$work" 2>/dev/null; then
  echo "a query that does not parse passed" >&2
  exit 1
fi
sed 's/\[\$__rate_interval\]/[5m]/' "$src/deploy/grafana/hkp-gateway.json" \
  > "$work/deploy/grafana/hkp-gateway.json"
if "$here/check_dashboard.sh" "$work" 2>/dev/null; then
  echo "a hard-coded window passed" >&2
  exit 1
fi
sed 's/,instance=~\\"\$instance\\"//' "$src/deploy/grafana/hkp-gateway.json" \
  > "$work/deploy/grafana/hkp-gateway.json"
if "$here/check_dashboard.sh" "$work" 2>/dev/null; then
  echo "a query without the instance filter passed" >&2
  exit 1
fi
echo "the dashboard check refuses all four broken copies"
