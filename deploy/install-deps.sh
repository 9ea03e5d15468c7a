#!/usr/bin/env bash
# Installs hkp-gateway's dependencies from Debian bookworm's archive, for one purpose:
#   install-deps.sh run    what building and running the gateway needs (`make run`)
#   install-deps.sh deb    that, and what building the Debian package needs (`make deb`)
#   install-deps.sh test   all that, and every tool the tests drive (`make test`; the default)
# Idempotent and silent when nothing is missing; refreshes the package lists only when it has to
# install something (a warm machine stays fast, a fresh one may have empty lists).
set -euo pipefail
purpose=${1:-test}
case $purpose in
  run | deb | test) ;;
  *) echo "usage: install-deps.sh [run|deb|test]" >&2; exit 2 ;;
esac

packages=(
  # building: the compiler, CMake, and the libraries' development packages
  build-essential cmake ninja-build pkg-config ccache
  libboost1.81-dev libssl-dev liblmdb-dev libgpg-error-dev librnp-dev libtoml11-dev
  prometheus-cpp-dev catch2 libcli11-dev libkainjow-mustache-dev
  # running: the system's CA certificates (upstreams are verified against them)
  ca-certificates
)
if [ "$purpose" != run ]; then
  packages+=(
    # the package build (deploy/debian): debhelper, the manual page's converter, lintian, and
    # systemd's pkg-config file (where units and sysusers.d files go)
    debhelper dpkg-dev go-md2man lintian systemd
  )
fi
if [ "$purpose" = test ]; then
  packages+=(
    # the package test (tests/deb) installs into a fresh bookworm root and boots it
    mmdebstrap systemd-container
    # the web pages' test drives a real browser (tests/js/web_check.mjs); a font to render with
    chromium fonts-dejavu-core
    # real GnuPG drives the integration tests, openssl makes the test CA, curl sends
    # hand-written requests, promtool checks /metrics and the rules, mdb_stat inspects the cache,
    # sks is a real keyserver (not ours) that an integration test puts behind TLS, sq (Sequoia)
    # is the second OpenPGP client the submission tests drive; haproxy is the load balancer the
    # replica test puts in front of three gateways (deploy/haproxy/)
    gnupg dirmngr openssl curl prometheus lmdb-utils sks sq haproxy
    # (systemd, above, also gives systemd-analyze, which rates the unit's hardening offline)
    # the reference logfmt decoder reads the gateway's log lines back (tests/logfmt)
    golang-go golang-github-go-logfmt-logfmt-dev
    # the fuzz targets (tests/fuzz): clang with libFuzzer and its sanitizer runtimes
    clang-14 libfuzzer-14-dev libclang-rt-14-dev
  )
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# Node.js runs OpenPGP.js, the second independent OpenPGP implementation the tests read answers
# with (tests/js). Asked for by command, not package: a machine may have Node.js from elsewhere,
# whose nodejs package bundles npm and conflicts with Debian's npm.
if [ "$purpose" = test ]; then
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The JavaScript test clients, exactly as tests/js/package-lock.json pins them (npm ci checks
# each package's integrity hash); again only when the lock file changed since the last install.
[ "$purpose" = test ] || exit 0
js="$(cd "$(dirname "$0")/.." && pwd)/tests/js"
if ! cmp -s "$js/package-lock.json" "$js/node_modules/.installed-lock.json"; then
  echo "install-deps: npm ci in tests/js" >&2
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$js/package-lock.json" "$js/node_modules/.installed-lock.json"
fi
