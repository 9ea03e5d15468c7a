#!/usr/bin/env bash
# The layering check must be able to fail, on each kind of slip alone: a clean scratch tree
# passes; then each slip is put into its own copy of it, and the check must exit 1 and report
# that file and line.
set -euo pipefail
check=$(cd "$(dirname "$0")" && pwd)/check_layers.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

clean=$work/clean
mkdir -p "$clean"/{config,hkp,cache,tests/support,docs} \
         "$clean"/gateway/{observe,net,upstream,service,http,app}
printf '#include <toml.hpp>\n#include "config/units.hpp"\n' > "$clean/config/config.cpp"
printf '#include "config/units.hpp"\n#include <rnp/rnp.h>\n#include <string>\n' > "$clean/hkp/keyring.cpp"
printf '#include <boost/json.hpp>\n#include <openssl/evp.h>\n' > "$clean/hkp/vks.cpp"
printf '#include <lmdb.h>\n#include <sys/stat.h>\n#include "hkp/key.hpp"\n' > "$clean/cache/store.cpp"
printf '#include <boost/beast/http.hpp>\n#include "gateway/observe/log.hpp"\n' > "$clean/gateway/net/server.cpp"
printf '#include "hkp/key.hpp"\n#include "cache/store.hpp"\n#include "gateway/net/tls.hpp"\n#include <boost/asio/awaitable.hpp>\n' \
  > "$clean/gateway/service/ok.cpp"
printf '#include "gateway/app/app.hpp"\n#include <catch2/catch.hpp>\n' > "$clean/tests/support/t.cpp"
if ! out=$("$check" "$clean"); then
  echo "the check refused a clean tree:" >&2
  echo "$out" >&2
  exit 1
fi

# slip NAME FILE CONTENT EXPECTED: a copy of the clean tree with FILE written, which the check
# must refuse with a line starting with EXPECTED.
slip() {
  local name=$1 file=$2 content=$3 expected=$4 tree=$work/$1 out
  cp -r "$clean" "$tree"
  mkdir -p "$(dirname "$tree/$file")"
  printf '%b' "$content" > "$tree/$file"
  if out=$("$check" "$tree"); then
    echo "$name: the check passed a tree with $file" >&2
    exit 1
  fi
  if ! grep -qF -- "$expected" <<<"$out"; then
    echo "$name: expected a line starting \"$expected\", got:" >&2
    echo "$out" >&2
    exit 1
  fi
}

slip quoted_upward config/units.cpp '// a comment\n#include <string>\n#include "gateway/app/app.hpp"\n' \
  'config/units.cpp:3: includes gateway/app/app.hpp'
slip angle_upward hkp/key.hpp '#include <cache/record.hpp>\n' \
  'hkp/key.hpp:1: includes cache/record.hpp'
slip net_to_service gateway/net/client.cpp '#include "gateway/observe/log.hpp"\n#include "gateway/service/work_pool.hpp"\n' \
  'gateway/net/client.cpp:2: includes gateway/service/work_pool.hpp'
slip ipp_upward gateway/observe/impl.ipp '#include "gateway/http/router.hpp"\n' \
  'gateway/observe/impl.ipp:1: includes gateway/http/router.hpp'
slip cc_upward cache/extra.cc '\n#include "gateway/upstream/fleet.hpp"\n' \
  'cache/extra.cc:2: includes gateway/upstream/fleet.hpp'
slip lmdb_outside_cache hkp/fast.cpp '#include <lmdb.h>\n' \
  'hkp/fast.cpp:1: includes <lmdb.h>'
slip beast_outside_net gateway/service/push.cpp '#include <boost/asio/awaitable.hpp>\n#include <boost/beast/http.hpp>\n' \
  'gateway/service/push.cpp:2: includes <boost/beast/http.hpp>'
slip rnp_outside_wrapper hkp/other.cpp '#include <rnp/rnp.h>\n' \
  'hkp/other.cpp:1: includes rnp/rnp.h, but RNP is used only by'
slip unlisted_library gateway/upstream/curl.cpp '#include <curl/curl.h>\n' \
  'gateway/upstream/curl.cpp:1: includes <curl/curl.h>'
slip file_in_gateway gateway/loose.cpp '#include "hkp/key.hpp"\n' \
  'gateway/loose.cpp:1: this file is in no layer'
slip folder_in_gateway gateway/web/page.cpp '#include "hkp/key.hpp"\n' \
  'gateway/web/page.cpp:1: this file is in no layer'
slip new_top_level web/page.hpp '#pragma once\n' \
  'web/page.hpp:1: this file is in no layer'
echo "layering check fails on each kind of slip, as it must"
