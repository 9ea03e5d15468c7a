#!/usr/bin/env bash
# `make deb`: builds the Debian package hkp-gateway_<VERSION>-<revision>_<arch>.deb with
# dpkg-buildpackage, from a staged copy of the source tree (the build never touches the working
# tree or its build/). The package's version is the VERSION file's; debian/changelog is written
# here from it and CHANGELOG.md, so the version lives in one place.
#   build-deb.sh [OUT_DIR]     (default: build/deb; the .deb lands there)
# Environment: DEB_REVISION (default 1), DEB_BUILD_OPTIONS (passed on; "nocheck" is implied, and
# "parallel=<CPUs>" unless it names a parallel= of its own).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mkdir -p "${1:-$src/build/deb}" && cd "${1:-$src/build/deb}" && pwd)
version=$(tr -d ' \n' <"$src/VERSION")
revision=${DEB_REVISION:-1}
stage=$out/hkp-gateway-$version

# The release date CHANGELOG.md gives this version: the package's changelog entry carries it.
date=$(sed -n "s/^## ${version//./\\.} (\([0-9]\{4\}-[0-9]\{2\}-[0-9]\{2\}\)).*/\1/p" "$src/CHANGELOG.md" | head -1)
if [ -z "$date" ]; then
  echo "build-deb: CHANGELOG.md has no \"## $version (YYYY-MM-DD)\" entry for VERSION $version" >&2
  exit 1
fi

# The source tree as git sees it (tracked and new files, not ignored ones), else all of it but
# the build trees and installed test clients.
rm -rf "$stage"
mkdir -p "$stage"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$src" && git ls-files -z --cached --others --exclude-standard --deduplicate) |
    (cd "$src" && while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done) |
    (cd "$src" && tar --null -T - -cf -) | tar -xf - -C "$stage"
else
  tar -C "$src" --exclude='./build*' --exclude=./tests/js/node_modules -cf - . | tar -xf - -C "$stage"
fi
rm -rf "$stage/debian"
cp -r "$src/deploy/debian" "$stage/debian"
rm -f "$stage/debian/build-deb.sh"
cat >"$stage/debian/changelog" <<CHANGES
hkp-gateway ($version-$revision) unstable; urgency=medium

  * Upstream release $version: /usr/share/doc/hkp-gateway/changelog.gz says
    what changed for operators and clients.

 -- hkp-gateway developers <maintainers@hkp-gateway.example.org>  $(LC_ALL=C date -u -R -d "$date 12:00")
CHANGES

# ccache (when present) keeps its usual cache: debhelper points HOME elsewhere during the build.
if command -v ccache >/dev/null; then
  CCACHE_DIR=${CCACHE_DIR:-$(ccache -k cache_dir)}
  export CCACHE_DIR CCACHE_BASEDIR=$stage CCACHE_NOHASHDIR=1
fi
options=${DEB_BUILD_OPTIONS:-}
[[ $options == *parallel=* ]] || options="$options parallel=$(nproc)"
export DEB_BUILD_OPTIONS="nocheck $options"
(cd "$stage" && dpkg-buildpackage --build=binary --no-sign >"$out/build.log" 2>&1) || {
  tail -40 "$out/build.log" >&2
  echo "build-deb: dpkg-buildpackage failed; the whole log: $out/build.log" >&2
  exit 1
}
deb=$(ls "$out"/hkp-gateway_"$version-$revision"_*.deb)
echo "$deb"
