#!/usr/bin/env bash
# The Debian package, as an operator meets it: `make deb`'s build script makes it; lintian finds
# no errors in it; it holds what hkp-gateway(8) says it installs; `apt-get install ./…deb` puts
# it on a fresh bookworm root (mmdebstrap, packages from Debian's archive); the installed binary
# accepts the shipped config; and, booted under systemd in systemd-nspawn (its own network
# namespace: loopback only), the hardened unit starts the gateway as the hkp-gateway user,
# answers on the admin port, survives a reload with a broken config at the journal's error
# priority, and stops cleanly (tests/deb/in-container.sh runs inside).
#   check_package.sh SOURCE_DIR WORK_DIR
# Environment: HKPGW_APT_CACHE, where downloaded .debs are kept between runs
# (default /var/cache/hkp-gateway-tests/apt).
set -euo pipefail
src=$1
work=$2
fail() { echo "package: $*" >&2; exit 1; }
version=$(tr -d '[:space:]' <"$src/VERSION")
rm -rf "$work"
mkdir -p "$work"

echo "== build (deploy/debian/build-deb.sh)"
# One compiler at a time: ctest gives this test one slot of its -j, like every other test.
deb=$(DEB_BUILD_OPTIONS=parallel=1 "$src/deploy/debian/build-deb.sh" "$work/out")
[ "$(dpkg-deb -f "$deb" Version)" = "$version-1" ] || fail "the package's version is not $version-1"

echo "== lintian"
lintian --fail-on error "$deb" 2>&1 | grep -v 'running with root privileges' || true
lintian --fail-on error "$deb" >/dev/null 2>&1 || fail "lintian reports errors"

echo "== contents"
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/sbin/hkp-gateway ./lib/systemd/system/hkp-gateway.service \
         ./usr/lib/sysusers.d/hkp-gateway.conf ./etc/hkp-gateway/gateway.toml \
         ./usr/share/man/man8/hkp-gateway.8.gz ./usr/share/doc/hkp-gateway/changelog.gz \
         ./usr/share/doc/hkp-gateway/changelog.Debian.gz ./usr/share/doc/hkp-gateway/copyright \
         ./usr/share/doc/hkp-gateway/contract.md.gz \
         ./usr/share/doc/hkp-gateway/examples/prometheus-rules.yml; do
  grep -qxF "$f" <<<"$contents" || fail "the package lacks $f"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles | grep -qx /etc/hkp-gateway/gateway.toml ||
  fail "/etc/hkp-gateway/gateway.toml is not a conffile"
# The manual page renders without a warning from man (lintian checks this too, with its own
# options; this is the page as a reader gets it).
warnings=$(dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/share/man/man8/hkp-gateway.8.gz |
  gunzip | LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z - 2>&1 >/dev/null)
[ -z "$warnings" ] || fail "man warns about hkp-gateway(8): $warnings"

echo "== install into a fresh bookworm root"
cache=${HKPGW_APT_CACHE:-/var/cache/hkp-gateway-tests/apt}
mkdir -p "$cache"
root=$work/root
mmdebstrap --quiet --mode=root --variant=apt --skip=essential/unlink \
  --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
  --setup-hook="sync-in $cache /var/cache/apt/archives/" \
  --customize-hook="copy-in $deb /root/" \
  --customize-hook="chroot \"\$1\" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /root/$(basename "$deb")" \
  --customize-hook="sync-out /var/cache/apt/archives $cache" \
  bookworm "$root" http://deb.debian.org/debian >"$work/mmdebstrap.log" 2>&1 ||
  { tail -30 "$work/mmdebstrap.log" >&2; fail "mmdebstrap or apt-get install failed"; }
in_root() { chroot "$root" "$@"; }
[ "$(in_root dpkg-query -W -f='${Status}' hkp-gateway)" = "install ok installed" ] ||
  fail "hkp-gateway is not installed in the root"
in_root hkp-gateway --check-config /etc/hkp-gateway/gateway.toml ||
  fail "the installed binary refuses the shipped config"
in_root getent passwd hkp-gateway | grep -q ':/var/lib/hkp-gateway:/usr/sbin/nologin$' ||
  fail "no hkp-gateway system user"
[ -L "$root/etc/systemd/system/multi-user.target.wants/hkp-gateway.service" ] ||
  fail "the unit is not enabled"

echo "== boot it under systemd (systemd-nspawn, private network)"
cp "$src/tests/deb/in-container.sh" "$root/root/in-container.sh"
cat >"$root/etc/systemd/system/hkpgw-check.service" <<UNIT
[Unit]
Description=hkp-gateway package check (tests/deb)
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/bin/bash /root/in-container.sh $version
[Install]
WantedBy=default.target
UNIT
ln -s /etc/systemd/system/hkpgw-check.service "$root/etc/systemd/system/multi-user.target.wants/"
# Bounded: the check powers the container off when done; 120 s is the outer limit.
timeout 120 systemd-nspawn --quiet --directory="$root" --boot --register=no --keep-unit \
  --private-network >"$work/boot.log" 2>&1 || true
[ -f "$root/root/result" ] || { tail -40 "$work/boot.log" >&2; fail "the check never ran in the container"; }
cat "$root/root/result"
grep -q '^not ok' "$root/root/result" && fail "a check in the container failed"
grep -q '^done$' "$root/root/result" || fail "the check in the container did not finish"
echo "package: $(basename "$deb") builds, passes lintian, installs, and runs under systemd"
