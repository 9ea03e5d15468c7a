#!/usr/bin/env bash
# The layering check must be able to fail: in a scratch tree with the four folders, a config/
# file that includes a gateway/ header (and an hkp/ one that includes cache/) must be reported
# with its file and line, and the check must exit 1; a clean tree must pass.
set -euo pipefail
check=$(cd "$(dirname "$0")" && pwd)/check_layers.sh
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree"/{config,hkp,cache,gateway}
printf '#include "config/units.hpp"\n' > "$tree/hkp/ok.cpp"
printf '#include "hkp/key.hpp"\n#include "cache/store.hpp"\n' > "$tree/gateway/ok.cpp"
"$check" "$tree" >/dev/null
printf '// a comment\n#include <string>\n#include "gateway/app.hpp"\n' > "$tree/config/units.cpp"
printf '#include "cache/record.hpp"\n' > "$tree/hkp/key.hpp"
if out=$("$check" "$tree"); then
  echo "the check passed a tree with wrong includes" >&2
  exit 1
fi
grep -q '^config/units.cpp:3: includes gateway/app.hpp' <<<"$out"
grep -q '^hkp/key.hpp:1: includes cache/record.hpp' <<<"$out"
echo "layering check fails on wrong includes, as it must"
