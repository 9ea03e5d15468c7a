#!/usr/bin/env bash
# The layering check must be able to fail: in a scratch tree with the layer folders, a config/
# file that includes a gateway/ header, an hkp/ one that includes cache/, and a gateway/net/ one
# that includes gateway/service/ must each be reported with file and line, and the check must
# exit 1; a clean tree must pass.
set -euo pipefail
check=$(cd "$(dirname "$0")" && pwd)/check_layers.sh
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree"/{config,hkp,cache} "$tree"/gateway/{observe,net,upstream,service,http,app}
printf '#include "config/units.hpp"\n' > "$tree/hkp/ok.cpp"
printf '#include "hkp/key.hpp"\n#include "cache/store.hpp"\n#include "gateway/net/tls.hpp"\n' \
  > "$tree/gateway/service/ok.cpp"
"$check" "$tree" >/dev/null
printf '// a comment\n#include <string>\n#include "gateway/app/app.hpp"\n' > "$tree/config/units.cpp"
printf '#include "cache/record.hpp"\n' > "$tree/hkp/key.hpp"
printf '#include "gateway/observe/log.hpp"\n#include "gateway/service/work_pool.hpp"\n' \
  > "$tree/gateway/net/server.cpp"
printf '#include "hkp/key.hpp"\n' > "$tree/gateway/loose.cpp"
if out=$("$check" "$tree"); then
  echo "the check passed a tree with wrong includes" >&2
  exit 1
fi
grep -q '^config/units.cpp:3: includes gateway/app/app.hpp' <<<"$out"
grep -q '^hkp/key.hpp:1: includes cache/record.hpp' <<<"$out"
grep -q '^gateway/net/server.cpp:2: includes gateway/service/work_pool.hpp' <<<"$out"
! grep -q '^gateway/net/server.cpp:1:' <<<"$out"
grep -q '^gateway/loose.cpp:1: this file is in no layer' <<<"$out"
echo "layering check fails on wrong includes, as it must"
