#!/usr/bin/env bash
# deploy/k8s checked offline: the replicas' config is valid (hkp-gateway --check-config), the
# ports, probe paths and mount paths of the manifests are the config's, HAProxy's environment
# points at them, cluster.peers names every replica, the PrometheusRule holds
# deploy/prometheus-rules.yml line for line, and the
# whole set renders with kubectl kustomize exactly as `kubectl apply -k deploy/k8s` would (no
# flag), every pod template meets Pod Security "restricted", the NetworkPolicy opens the config's
# ports, and the Ingress example points at a Service port the set has (when kubectl is
# installed; no cluster is needed).
#   check_k8s.sh SOURCE_DIR GATEWAY_BINARY
set -euo pipefail
src=$1
gateway=$2
k8s=$src/deploy/k8s
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "deploy/k8s: $*" >&2; exit 1; }

# The config, with the container's file paths pointed at the repository's files.
openssl rand -hex 32 > "$work/secret"   # what the operator's Secret holds
sed -e "s|/etc/hkp-gateway/blocklist|$k8s/blocklist|" \
  -e "s|/run/secrets/hkp-gateway/secret|$work/secret|" "$k8s/gateway.toml" > "$work/gateway.toml"
"$gateway" --check-config "$work/gateway.toml" >/dev/null || fail "gateway.toml does not load"

hkp_port=$(sed -n 's/^listen = \["0\.0\.0\.0:\([0-9]*\)"\].*/\1/p' "$k8s/gateway.toml")
admin_port=$(sed -n 's/^listen = "0\.0\.0\.0:\([0-9]*\)".*/\1/p' "$k8s/gateway.toml")
[ -n "$hkp_port" ] && [ -n "$admin_port" ] || fail "gateway.toml listens on no 0.0.0.0 ports"
grep -q "name: hkp, containerPort: $hkp_port}" "$k8s/statefulset.yaml" || fail "hkp port is not $hkp_port"
grep -q "name: admin, containerPort: $admin_port}" "$k8s/statefulset.yaml" ||
  fail "admin port is not $admin_port"
for path in /healthz /readyz; do
  grep -q "path: $path, port: admin" "$k8s/statefulset.yaml" || fail "no probe on $path"
  grep -q "GET $path" "$src/docs/contract.md" || fail "$path is no endpoint of the contract"
done
grep -q '"--config", "/etc/hkp-gateway/gateway.toml"' "$k8s/statefulset.yaml" ||
  fail "the container does not read /etc/hkp-gateway/gateway.toml"
grep -q 'mountPath: /etc/hkp-gateway,' "$k8s/statefulset.yaml" || fail "config not mounted"
cache=$(sed -n 's/^path = "\([^"]*\)".*/\1/p' "$k8s/gateway.toml")
grep -q "mountPath: $(dirname "$cache")}" "$k8s/statefulset.yaml" ||
  fail "cache.path $cache is not on the volume"
for i in 1 2 3; do
  grep -q "HKPGW_R$i, value: \"hkp-gateway-$((i - 1)).hkp-gateway-replicas:$hkp_port\"" \
    "$k8s/haproxy.yaml" || fail "HAProxy's HKPGW_R$i is not replica $((i - 1)) on $hkp_port"
  grep -q "HKPGW_A$i, value: \"$admin_port\"" "$k8s/haproxy.yaml" || fail "HKPGW_A$i is not $admin_port"
done

# [cluster] peers: every replica of the StatefulSet, by its stable name, on the admin port.
replicas=$(sed -n 's/^  replicas: \([0-9]*\)$/\1/p' "$k8s/statefulset.yaml")
[ -n "$replicas" ] || fail "statefulset.yaml sets no replicas"
peers=$(sed -n '/^\[cluster\]/,/^\[/p' "$k8s/gateway.toml" | tr -d ' \n' |
  sed -n 's/.*peers=\[\([^]]*\)\].*/\1/p' | tr ',' '\n' | tr -d '"' | sed '/^$/d')
expected=$(for ((i = 0; i < replicas; i++)); do
  echo "hkp-gateway-$i.hkp-gateway-replicas:$admin_port"
done)
[ "$peers" = "$expected" ] ||
  fail "cluster.peers is not the $replicas replicas' admin listeners: $(echo $peers)"

# The PrometheusRule's groups are the rules file's.
sed -n '/^spec:$/,$p' "$k8s/prometheusrule.yaml" | tail -n +2 | sed -e 's/^  //' > "$work/embedded"
grep -v '^#' "$src/deploy/prometheus-rules.yml" > "$work/rules"
diff -u "$work/rules" "$work/embedded" >&2 || fail "prometheusrule.yaml differs from prometheus-rules.yml"

# NetworkPolicy: the replicas' ports are the config's.
grep -q "port: $hkp_port}" "$k8s/networkpolicy.yaml" || fail "networkpolicy.yaml does not open $hkp_port"
grep -q "port: $admin_port}" "$k8s/networkpolicy.yaml" || fail "networkpolicy.yaml does not open $admin_port"

if command -v kubectl >/dev/null; then
  # Exactly the documented command's rendering: no flag (kubectl apply -k has none to give).
  kubectl kustomize "$k8s" > "$work/all.yaml" || fail "kubectl kustomize $k8s failed"
  kinds=$(grep -c '^kind:' "$work/all.yaml")
  [ "$kinds" -eq 13 ] || fail "rendered $kinds objects, expected 13"
  grep -q 'haproxy.cfg: |' "$work/all.yaml" || fail "HAProxy's ConfigMap lacks haproxy.cfg"
  # Pod Security "restricted" for every pod template, and the Ingress example's backend is a
  # Service and port the set has.
  python3 - "$work/all.yaml" "$k8s/examples/ingress-tls.yaml" <<'PY' || fail "see above"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
bad = []
for d in docs:
    if d["kind"] not in ("Deployment", "StatefulSet"):
        continue
    spec = d["spec"]["template"]["spec"]
    name = d["metadata"]["name"]
    pod = spec.get("securityContext", {})
    if pod.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
        bad.append(f"{name}: no RuntimeDefault seccomp profile")
    if not pod.get("runAsNonRoot"):
        bad.append(f"{name}: runAsNonRoot is not set")
    if not spec.get("topologySpreadConstraints"):
        bad.append(f"{name}: no topologySpreadConstraints")
    for c in spec["containers"]:
        sc = c.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False:
            bad.append(f"{name}/{c['name']}: allowPrivilegeEscalation is not false")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            bad.append(f"{name}/{c['name']}: capabilities are not all dropped")
        if not sc.get("readOnlyRootFilesystem"):
            bad.append(f"{name}/{c['name']}: the root file system is writable")
services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
ingress = yaml.safe_load(open(sys.argv[2]))
for rule in ingress["spec"]["rules"]:
    for path in rule["http"]["paths"]:
        svc = path["backend"]["service"]
        ports = [p["name"] for p in services.get(svc["name"], {}).get("spec", {}).get("ports", [])]
        if svc["port"]["name"] not in ports:
            bad.append(f"ingress example: no Service {svc['name']} with a port {svc['port']['name']}")
for b in bad:
    print("deploy/k8s: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
  echo "deploy/k8s: consistent; kubectl kustomize renders $kinds objects; pods meet Pod Security restricted"
else
  echo "deploy/k8s: consistent (kubectl not installed: the rendering was not checked)"
fi
