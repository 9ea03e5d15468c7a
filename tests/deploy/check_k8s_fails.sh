#!/usr/bin/env bash
# The deploy/k8s check can fail: copies with a probe port that is not the config's, with a
# PrometheusRule that drifted from prometheus-rules.yml, with more replicas than cluster.peers
# names, with a pod lacking its seccomp profile, and with an Ingress example pointing at a port
# no Service has, must each be refused.
#   check_k8s_fails.sh SOURCE_DIR GATEWAY_BINARY
set -uo pipefail
src=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
copy() {
  rm -rf "$work/src" && mkdir -p "$work/src/deploy" "$work/src/docs"
  cp -r "$src/deploy/k8s" "$src/deploy/haproxy" "$src/deploy/prometheus-rules.yml" "$work/src/deploy/"
  cp "$src/docs/contract.md" "$work/src/docs/"
}
copy  # unbroken, it passes: each refusal below is its breakage's
"$here/check_k8s.sh" "$work/src" "$2" >/dev/null || { echo "the unbroken copy was refused" >&2; exit 1; }
copy
sed -i 's/containerPort: 11380/containerPort: 11381/' "$work/src/deploy/k8s/statefulset.yaml"
if "$here/check_k8s.sh" "$work/src" "$2" 2>/dev/null; then echo "a wrong port passed" >&2; exit 1; fi
copy
sed -i 's/for: 10m/for: 11m/' "$work/src/deploy/prometheus-rules.yml"
if "$here/check_k8s.sh" "$work/src" "$2" 2>/dev/null; then echo "a drifted rule passed" >&2; exit 1; fi
copy
sed -i 's/^  replicas: 3$/  replicas: 4/' "$work/src/deploy/k8s/statefulset.yaml"
if "$here/check_k8s.sh" "$work/src" "$2" 2>/dev/null; then
  echo "a peer list short of a replica passed" >&2
  exit 1
fi
copy
sed -i '/seccompProfile/d' "$work/src/deploy/k8s/haproxy.yaml"
if "$here/check_k8s.sh" "$work/src" "$2" 2>/dev/null; then
  echo "a pod without a seccomp profile passed" >&2
  exit 1
fi
copy
sed -i 's/name: hkp-gateway, port: {name: hkp}/name: hkp-gateway, port: {name: http}/' \
  "$work/src/deploy/k8s/examples/ingress-tls.yaml"
if "$here/check_k8s.sh" "$work/src" "$2" 2>/dev/null; then
  echo "an Ingress to a port no Service has passed" >&2
  exit 1
fi
echo "the deploy/k8s check refuses the five broken copies"
