#!/usr/bin/env bash
# The dependency order of the libraries, checked on the sources: a file may include headers of its
# own layer and of the layers below it, never above.
#   config <- hkp <- cache <- gateway/observe <- gateway/net <- gateway/upstream
#          <- gateway/service <- gateway/http <- gateway/app
# Every library puts the project root on the include path (headers are named "folder/file.hpp"),
# so the compiler would accept a wrong include: this check is what enforces the order. A file
# directly in gateway/ (outside every layer) is reported too.
#   check_layers.sh [ROOT]   prints each violation as FILE:LINE and exits 1 if there is any
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
layers=(config hkp cache gateway/observe gateway/net gateway/upstream gateway/service gateway/http
        gateway/app)

# The rank of the layer a path (relative to the root) belongs to; -1 when it is in none.
rank_of() {
  local path=$1 i
  for i in "${!layers[@]}"; do
    case "$path" in "${layers[$i]}"/*) echo "$i"; return ;; esac
  done
  echo -1
}

status=0
while IFS= read -r hit; do
  file=${hit%%:*}
  rel=${file#"$root"/}
  rest=${hit#*:}
  line=${rest%%:*}
  target=$(printf '%s' "$rest" | sed -E 's/^[0-9]+:[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/')
  from=$(rank_of "$rel")
  if [ "$from" -lt 0 ]; then
    echo "$rel:$line: this file is in no layer (gateway/ holds only the layer folders)"
    status=1
    continue
  fi
  [ "${target#*/}" = "$target" ] && continue           # "file.hpp": same folder
  [ -d "$root/${target%%/*}" ] || continue              # not one of ours
  to=$(rank_of "$target")
  if [ "$to" -lt 0 ] || [ "$to" -gt "$from" ]; then
    below=$(printf '%s ' "${layers[@]:0:from+1}")
    echo "$rel:$line: includes $target, but ${layers[$from]}/ may use only: ${below% }"
    status=1
  fi
done < <(for top in config hkp cache gateway; do
           [ -d "$root/$top" ] || continue
           grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$root/$top" \
             --include='*.cpp' --include='*.hpp' --include='*.h' || true
         done)
[ $status -eq 0 ] && echo "layering: every include follows ${layers[*]}"
exit $status
