#!/usr/bin/env bash
# The dependency rules of the sources, checked on the text of every include (quoted or in angle
# brackets, in any C++ file: .cpp .hpp .h .ipp .cc .cxx .hh .inl):
#  1. Layers: a file may include headers of its own layer and of the layers below it, never above.
#       config <- hkp <- cache <- gateway/observe <- gateway/net <- gateway/upstream
#              <- gateway/service <- gateway/http <- gateway/cluster <- gateway/app
#     Every library puts the project root on the include path (headers are named
#     "folder/file.hpp"), so the compiler would accept a wrong include: this check enforces it.
#  2. Every source file is in a layer: a file directly in gateway/, in a gateway/ folder that is
#     no layer, or in a top-level folder that is neither a layer nor one of tests, bench, deploy,
#     docs is reported (a new module is placed in the order, not beside it).
#  3. Third-party headers: each layer may include only its own allow-list below (the C++
#     standard library and the operating system's headers are allowed everywhere). So LMDB stays
#     in cache/, Beast in gateway/net/, prometheus-cpp in gateway/observe/, toml11 in config/,
#     and RNP in the files that wrap it (rnp_files).
#   check_layers.sh [ROOT]   prints each violation as FILE:LINE: what, and exits 1 if there is any
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
layers=(config hkp cache gateway/observe gateway/net gateway/upstream gateway/service gateway/http
        gateway/cluster gateway/app)
# Top-level folders that hold no product code (their own rules, or none).
outside=(tests bench deploy docs build build-asan build-fuzz .git .ci)
exts=(cpp hpp h ipp cc cxx hh inl)

# Third-party headers each layer may include, as shell patterns.
declare -A allowed=(
  [config]='toml.hpp'
  [hkp]='boost/json.hpp boost/json/* boost/system/* gpg-error.h openssl/* rnp/*'
  [cache]='lmdb.h'
  [gateway/observe]='prometheus/*'
  [gateway/net]='boost/asio.hpp boost/asio/* boost/beast.hpp boost/beast/* openssl/*'
  [gateway/upstream]='boost/asio/*'
  [gateway/service]='boost/asio/*'
  [gateway/http]='boost/asio/* kainjow/mustache.hpp openssl/crypto.h'
  [gateway/cluster]='boost/asio/*'
  [gateway/app]='boost/asio/* CLI/*'
)
# The files that wrap RNP: nothing else names it.
rnp_files=(hkp/keyring.cpp)
# Headers of the C library and the operating system (POSIX, Linux).
system_header() {
  case "$1" in
    sys/*|arpa/*|netinet/*|linux/*|unistd.h|fcntl.h|pthread.h|sched.h|malloc.h|signal.h|errno.h|poll.h|\
    netdb.h|dirent.h|time.h|string.h|stdlib.h|stdio.h) return 0 ;;
  esac
  return 1
}

# The rank of the layer a path (relative to the root) belongs to; -1 when it is in none.
rank_of() {
  local path=$1 i
  for i in "${!layers[@]}"; do
    case "$path" in "${layers[$i]}"/*) echo "$i"; return ;; esac
  done
  echo -1
}

status=0
report() {
  echo "$1"
  status=1
}

# Source files outside every layer: in gateway/ itself or a folder of it that is no layer, or in
# a top-level folder that is neither a layer's nor one of `outside`.
name_args=()
for e in "${exts[@]}"; do name_args+=(-o -name "*.$e"); done
name_args=("${name_args[@]:1}")
while IFS= read -r file; do
  rel=${file#"$root"/}
  top=${rel%%/*}
  [ "$top" = "$rel" ] && continue  # a file at the root (none are sources)
  skip=0
  for o in "${outside[@]}"; do [ "$top" = "$o" ] && skip=1; done
  [ $skip -eq 1 ] && continue
  if [ "$(rank_of "$rel")" -lt 0 ]; then
    report "$rel:1: this file is in no layer (add its folder to the order in check_layers.sh and ARCHITECTURE.md, or place it in a layer)"
  fi
done < <(find "$root" -mindepth 2 -type d \( -name .git -o -name 'build*' \) -prune -o \
           -type f \( "${name_args[@]}" \) -print | sort)

include_args=()
for e in "${exts[@]}"; do include_args+=(--include="*.$e"); done
while IFS= read -r hit; do
  file=${hit%%:*}
  rel=${file#"$root"/}
  rest=${hit#*:}
  line=${rest%%:*}
  from=$(rank_of "$rel")
  [ "$from" -lt 0 ] && continue  # reported above
  layer=${layers[$from]}
  [[ $rest =~ ^[0-9]+:[[:space:]]*#[[:space:]]*include[[:space:]]*([\"<])([^\">]+) ]] || continue
  quote=${BASH_REMATCH[1]}
  target=${BASH_REMATCH[2]}
  first=${target%%/*}
  if [ "$first" != "$target" ] && [ -d "$root/$first" ]; then
    to=$(rank_of "$target")  # one of ours, quoted or not
    if [ "$to" -lt 0 ] || [ "$to" -gt "$from" ]; then
      below=$(printf '%s ' "${layers[@]:0:from+1}")
      report "$rel:$line: includes $target, but $layer/ may use only: ${below% }"
    fi
    continue
  fi
  [ "$quote" = '"' ] && continue                         # "file.hpp": its own folder
  case "$target" in */*|*.h|*.hpp|*.hh) ;; *) continue ;; esac  # <string>: the standard library
  system_header "$target" && continue
  ok=0
  for pattern in ${allowed[$layer]}; do
    # shellcheck disable=SC2254
    case "$target" in $pattern) ok=1 ;; esac
  done
  if [ $ok -eq 1 ] && [ "${target%%/*}" = rnp ]; then
    ok=0
    for f in "${rnp_files[@]}"; do [ "$rel" = "$f" ] && ok=1; done
    [ $ok -eq 0 ] && report "$rel:$line: includes $target, but RNP is used only by ${rnp_files[*]}" && continue
  fi
  [ $ok -eq 1 ] || report "$rel:$line: includes <$target>, which is not on $layer/'s list of third-party headers (${allowed[$layer]})"
done < <(for top in config hkp cache gateway; do
           [ -d "$root/$top" ] || continue
           grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<]' "$root/$top" \
             "${include_args[@]}" || true
         done)
[ $status -eq 0 ] && echo "layering: every include follows ${layers[*]}, and each layer's third-party headers its list"
exit $status
