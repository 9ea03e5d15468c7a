#!/usr/bin/env bash
# The Grafana dashboard's queries are real: every PromQL expression in
# deploy/grafana/hkp-gateway.json parses (promtool, each wrapped as a recording rule, with the
# dashboard's $job variable filled in), and every hkp_gateway_* metric it names is one the
# gateway registers (gateway/observe/metrics.cpp, and the families components declare;
# histograms by their _bucket series).
#   check_dashboard.sh SOURCE_DIR
set -euo pipefail
src=$1
dashboard=$src/deploy/grafana/hkp-gateway.json
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The expressions, JSON-unescaped (they hold no other escapes than \" and \\).
grep -o '"expr": *"\([^"\\]\|\\.\)*"' "$dashboard" |
  sed -e 's/^"expr": *"//' -e 's/"$//' -e 's/\\"/"/g' -e 's/\\\\/\\/g' > "$work/exprs"
n=$(wc -l < "$work/exprs")
[ "$n" -ge 15 ] || { echo "only $n expressions found in $dashboard" >&2; exit 1; }

{
  echo "groups:"
  echo "  - name: dashboard"
  echo "    rules:"
  i=0
  while IFS= read -r e; do
    i=$((i + 1))
    e=${e//\$job/.+}
    e=${e//\$instance/.+}
    e=${e//\$__rate_interval/5m}
    e=${e//\$__range/1h}
    echo "      - record: hkp_gateway:dashboard_query_$i"
    echo "        expr: '${e//\'/\'\'}'"
  done < "$work/exprs"
} > "$work/rules.yml"
promtool check rules "$work/rules.yml" >/dev/null

# The mixins' conventions: no window written into a query (Grafana's $__rate_interval or
# $__range instead, so a zoom or a scrape interval change keeps them right), and every selector
# filtered by the $job and $instance variables.
if grep -nE '\[[0-9]+[smhd]\]' "$work/exprs" >&2; then
  echo "the dashboard hard-codes a range window (above); use \$__rate_interval or \$__range" >&2
  exit 1
fi
unfiltered=$(grep -oE '(hkp_gateway|process)_[a-z_]*(\{[^}]*\})?' "$work/exprs" |
  grep -v 'job=~"\$job",instance=~"\$instance"' || true)
if [ -n "$unfiltered" ]; then
  echo "selectors without the \$job and \$instance filters: $unfiltered" >&2
  exit 1
fi

# Registered in metrics.cpp itself, or by a component declaring its own family
# (metrics.counter("name", ...), metrics.gauge("name", ...): observe/stats.hpp).
{
  grep -o 'Name("hkp_gateway_[a-z_]*")' "$src/gateway/observe/metrics.cpp" |
    sed -e 's/Name("//' -e 's/")//'
  find "$src/gateway" -name '*.cpp' -o -name '*.hpp' | sort | xargs cat | tr -s ' \n' ' ' |
    { grep -oE '\.(counter|gauge)\( ?"[a-z_]+"' || true; } | sed -E 's/.*"([a-z_]+)"/hkp_gateway_\1/'
} | sort -u > "$work/registered"
grep -o 'hkp_gateway_[a-z_]*' "$work/exprs" | sed -e 's/_bucket$//' | sort -u > "$work/used"
unknown=$(comm -23 "$work/used" "$work/registered")
if [ -n "$unknown" ]; then
  echo "the dashboard names metrics the gateway does not export: $unknown" >&2
  exit 1
fi
echo "dashboard: $n expressions parse, $(wc -l < "$work/used") metrics, all exported"
