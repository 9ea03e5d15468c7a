#!/usr/bin/env bash
# The dependency order of the libraries, checked on the sources: a file may include headers of its
# own folder and of the folders below it, never above.
#   config/  <-  hkp/  <-  cache/  <-  gateway/
# Every library puts the project root on the include path (headers are named "folder/file.hpp"),
# so the compiler would accept a wrong include: this check is what enforces the order.
#   check_layers.sh [ROOT]   prints each violation as FILE:LINE and exits 1 if there is any
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
declare -A allowed=(
  [config]="config"
  [hkp]="config hkp"
  [cache]="config hkp cache"
  [gateway]="config hkp cache gateway"
)
status=0
for layer in config hkp cache gateway; do
  [ -d "$root/$layer" ] || continue
  while IFS= read -r hit; do
    file=${hit%%:*}
    rest=${hit#*:}
    line=${rest%%:*}
    target=$(printf '%s' "$rest" | sed -E 's/^[0-9]+:[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/')
    folder=${target%%/*}
    [ "$folder" = "$target" ] && continue              # "file.hpp": same folder
    [ -d "$root/$folder" ] || continue                 # not one of ours
    case " ${allowed[$layer]} " in
      *" $folder "*) ;;
      *)
        echo "${file#"$root"/}:$line: includes $target, but $layer/ may use only: ${allowed[$layer]}"
        status=1
        ;;
    esac
  done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$root/$layer" \
             --include='*.cpp' --include='*.hpp' --include='*.h' || true)
done
[ $status -eq 0 ] && echo "layering: every include follows config <- hkp <- cache <- gateway"
exit $status
