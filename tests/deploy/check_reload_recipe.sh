#!/usr/bin/env bash
# The reload recipe the README gives for Kubernetes works as written: the command after
# "kubectl exec hkp-gateway-$i -- " is taken from the README and run, as kubectl exec would run
# it, inside the PID namespace of a gateway that is PID 1 there (as in its container, where the
# kernel drops signals PID 1 has no handler for). The gateway must log a successful reload of the
# changed config.
#   check_reload_recipe.sh SOURCE_DIR GATEWAY_BINARY
set -euo pipefail
src=$1
gateway=$2
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "${inner:-}" ] && kill "$inner" 2>/dev/null
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "reload recipe: $*" >&2; exit 1; }

recipe=$(sed -n 's/^for i in 0 1 2; do kubectl exec hkp-gateway-\$i -- \(.*\); done$/\1/p' "$src/README.md")
[ -n "$recipe" ] || fail "no 'kubectl exec hkp-gateway-\$i -- ...' line in README.md"

cat > "$work/gateway.toml" <<TOML
upstream = []
[server]
listen = ["127.0.0.1:0"]
[admin]
listen = "127.0.0.1:0"
[cache]
path = "$work/cache"
TOML
# PID 1 of a new PID namespace (with its own /proc, as a container has).
unshare --pid --fork --mount-proc --kill-child=TERM "$gateway" --config "$work/gateway.toml" 2> "$work/log" &
pid=$!
for _ in $(seq 100); do grep -q 'event=started' "$work/log" && break; sleep 0.1; done
grep -q 'event=started' "$work/log" || fail "the gateway did not start: $(cat "$work/log")"
inner=$(pgrep -P "$pid" -f "$gateway") || fail "no gateway process under unshare"
[ "$(awk '/^NSpid:/ {print $NF}' "/proc/$inner/status")" = 1 ] || fail "the gateway is not PID 1"

# kubectl exec runs the words it is given as a program and its arguments, no shell: split the
# recipe as the operator's shell does. The program must be one a minimal Debian image has (from
# an Essential package: the image is debootstrap's minbase plus the gateway's libraries);
# procps's kill is not.
eval "set -- $recipe"
program=$(command -v "$1") || fail "no program $1"
package=
# Under merged /usr a program's path may be registered as /bin/NAME, and NAME may be a link.
for path in "$program" "$(readlink -f "$program")" "/bin/$(basename "$program")" \
  "/bin/$(basename "$(readlink -f "$program")")"; do
  package=$(dpkg -S "$path" 2>/dev/null | grep -v "^diversion " | head -1 | cut -d: -f1 || true)
  [ -n "$package" ] && break
done
[ -n "$package" ] || fail "$1 ($program) belongs to no Debian package"
[ "$(dpkg-query -W -f='${Essential}' "$package")" = yes ] ||
  fail "$1 ($package) is not in every Debian image: the container has no such program"

# A change to apply, then the recipe, word for word, inside the gateway's namespaces.
sed -i 's/^\[server\]$/[server]\nlog_searches = true/' "$work/gateway.toml"
nsenter --target "$inner" --pid --mount "$@" || fail "'$recipe' failed"
for _ in $(seq 100); do grep -q 'event=config_reload result=success' "$work/log" && break; sleep 0.1; done
grep -q 'event=config_reload result=success.*server.log_searches' "$work/log" ||
  fail "no successful reload of server.log_searches after '$recipe': $(tail -3 "$work/log")"
echo "reload recipe: '$recipe' reloads a gateway that is PID 1"
