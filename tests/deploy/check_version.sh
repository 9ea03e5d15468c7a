#!/usr/bin/env bash
# One version everywhere: the VERSION file is what the binary says (--version), every image tag
# of hkp-gateway in deploy/ and the docs, and the newest entry of CHANGELOG.md.
#   check_version.sh SOURCE_DIR GATEWAY_BINARY
set -euo pipefail
src=$1
gateway=$2
fail() { echo "version: $*" >&2; exit 1; }
v=$(tr -d '[:space:]' < "$src/VERSION")
[[ $v =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "VERSION is not X.Y.Z: $v"
said=$("$gateway" --version)
[ "$said" = "hkp-gateway $v" ] || fail "the binary says \"$said\", VERSION is $v"
# Image tags: hkp-gateway:X.Y[.Z] or hkp-gateway-prometheus:X.Y[.Z] (a port, hkp-gateway:11371,
# has no dot).
tags=$(grep -rhoE 'hkp-gateway(-prometheus)?:[0-9]+\.[0-9]+(\.[0-9]+)?' "$src/deploy" "$src/README.md" \
  "$src/docs" | sed -E 's/.*:([0-9.]*[0-9]).*/\1/' | sort -u)
for t in $tags; do [ "$t" = "$v" ] || fail "an image tag says $t, VERSION is $v"; done
newest=$(sed -n 's/^## \[\?\([0-9][0-9.]*\)\]\?.*/\1/p' "$src/CHANGELOG.md" | head -1)
[ "$newest" = "$v" ] || fail "CHANGELOG.md's newest entry is ${newest:-none}, VERSION is $v"
echo "version: $v in the binary, $(wc -w <<<"$tags") image tag(s) and CHANGELOG.md"
