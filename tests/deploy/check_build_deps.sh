#!/usr/bin/env bash
# Three places list what building the gateway needs: deploy/install-deps.sh (`make run`), the
# container image's build stage and the Debian package's Build-Depends. A library added to one
# and not the others breaks the image or the package far from the change (CLI11 did): every
# -dev package install-deps.sh builds with must be in the other two.
#   check_build_deps.sh SOURCE_DIR
set -euo pipefail
src=$1
fail() { echo "build deps: $*" >&2; exit 1; }
# The first packages=( ... ) list of install-deps.sh, comments removed: what building needs.
build=$(sed -n '/^packages=(/,/^)/p' "$src/deploy/install-deps.sh" | sed 's/#.*//' |
  tr ' ' '\n' | grep -E -- '-dev$' | sort -u)
[ "$(wc -l <<<"$build")" -ge 8 ] || fail "found only: $build"
container=$(sed -n '/^FROM .* AS build/,/^FROM /p' "$src/deploy/container/Containerfile")
control=$(sed -n '/^Build-Depends:/,/^[A-Z][A-Za-z-]*:/p' "$src/deploy/debian/control")
for p in $build; do
  grep -qw -- "$p" <<<"$container" || fail "the Containerfile's build stage lacks $p"
  grep -qw -- "$p" <<<"$control" || fail "deploy/debian/control's Build-Depends lacks $p"
done
echo "build deps: $(wc -l <<<"$build") development packages in all three lists"
