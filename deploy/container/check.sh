#!/usr/bin/env bash
# Builds the image and checks it runs as it should: non-root, read-only root file system, the
# cache on its volume, /healthz and the HEALTHCHECK passing, a graceful stop (exit 0). Not part
# of `make test` (it downloads a Debian base and builds for minutes); run it by hand:
#   deploy/container/check.sh
# Without a registry it makes the base with debootstrap. Where crun cannot start containers
# (mixed cgroups, a fixed file descriptor limit), it uses runc and no default ulimits.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'podman rm -f hkpgw-check >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
printf '[containers]\ndefault_ulimits = []\n' > "$work/containers.conf"
export CONTAINERS_CONF=$work/containers.conf
pod=(podman)
command -v runc >/dev/null && pod+=(--runtime runc)
if ! podman image exists localhost/bookworm:base; then
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >/dev/null
  tar -C "$work/rootfs" -c . | podman import - localhost/bookworm:base >/dev/null
fi
"${pod[@]}" build --format docker --network host --build-arg BASE=localhost/bookworm:base \
  -f "$root/deploy/container/Containerfile" -t "hkp-gateway:$(cat "$root/VERSION")" "$root" >/dev/null
"${pod[@]}" run -d --name hkpgw-check --network host --read-only \
  -v hkpgw-check-cache:/var/lib/hkp-gateway "hkp-gateway:$(cat "$root/VERSION")" >/dev/null
for _ in $(seq 50); do curl -sf http://127.0.0.1:11380/healthz >/dev/null && break; sleep 0.2; done
curl -sf http://127.0.0.1:11380/healthz >/dev/null || { echo "no /healthz" >&2; exit 1; }
[ "$("${pod[@]}" exec hkpgw-check id -u)" = 10001 ] || { echo "not uid 10001" >&2; exit 1; }
if "${pod[@]}" exec hkpgw-check touch /probe 2>/dev/null; then echo "root is writable" >&2; exit 1; fi
"${pod[@]}" exec hkpgw-check test -f /var/lib/hkp-gateway/cache/data.mdb
"${pod[@]}" healthcheck run hkpgw-check 2>/dev/null
"${pod[@]}" stop -t 15 hkpgw-check >/dev/null
[ "$(podman inspect hkpgw-check --format '{{.State.ExitCode}}')" = 0 ] || { echo "stop: not exit 0" >&2; exit 1; }
echo "container: built; uid 10001, read-only root, cache on the volume, healthy, stopped with 0"
