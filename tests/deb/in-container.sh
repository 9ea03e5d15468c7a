#!/bin/bash
# Runs inside the booted package-test container (tests/deb/check_package.sh) as a oneshot unit:
# each check prints "ok NAME" or "not ok NAME: why" to /root/result; "done" at the end; then the
# container powers off.
#   in-container.sh VERSION
version=$1
exec >/root/result 2>&1
ok() { echo "ok $1"; }
not_ok() { echo "not ok $1: $2"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else not_ok "$name" "$*"; fi; }
# One HTTP/1.0 request on loopback, the answer on stdout (bash's /dev/tcp: no curl here).
get() {
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$2" >&3
  timeout 5 cat <&3
  exec 3>&-
}
answering() { for _ in $(seq 1 100); do get 11380 /healthz 2>/dev/null | grep -q '^ok' && return 0; sleep 0.1; done; return 1; }

check unit_active systemctl is-active --quiet hkp-gateway
check admin_answers answering
pid=$(systemctl show -p MainPID --value hkp-gateway)
uid=$(id -u hkp-gateway)
check runs_as_hkp_gateway grep -qE "^Uid:\s+$uid\s" "/proc/$pid/status"
check no_capabilities grep -qE '^CapEff:\s+0+$' "/proc/$pid/status"
check no_new_privileges grep -qE '^NoNewPrivs:\s+1$' "/proc/$pid/status"
check seccomp_filter grep -qE '^Seccomp:\s+2$' "/proc/$pid/status"
check cache_in_state_directory test -O /var/lib/hkp-gateway/data.mdb -o "$(stat -c %u /var/lib/hkp-gateway/data.mdb)" = "$uid"
check metrics_say_version bash -c "$(declare -f get); get 11380 /metrics | grep -qF 'hkp_gateway_build_info{version=\"$version\"} 1'"
check hkp_port_ready bash -c "$(declare -f get); get 11371 /readyz | head -1 | grep -qE ' (200|503) '"
check cache_stats_beside_it runuser -u hkp-gateway -- hkp-gateway -c /etc/hkp-gateway/gateway.toml cache stats

# A broken config on reload: refused, logged at the journal's error priority, still serving.
cp /etc/hkp-gateway/gateway.toml /root/gateway.toml.good
echo 'this is = = not toml' >>/etc/hkp-gateway/gateway.toml
systemctl reload hkp-gateway
sleep 1
check bad_reload_keeps_serving answering
check bad_reload_same_process test "$(systemctl show -p MainPID --value hkp-gateway)" = "$pid"
check bad_reload_at_error_priority bash -c "journalctl -u hkp-gateway -p err -o cat | grep -q 'event=config_reload.*result=failure'"
check info_lines_not_errors bash -c "! journalctl -u hkp-gateway -p err -o cat | grep -q 'event=started'"
cp /root/gateway.toml.good /etc/hkp-gateway/gateway.toml
systemctl reload hkp-gateway
sleep 1
check good_reload bash -c "$(declare -f get); get 11380 /metrics | grep -q 'hkp_gateway_config_reloads_total{result=\"success\"} 1'"

check clean_stop systemctl stop hkp-gateway
check stopped_successfully test "$(systemctl show -p Result --value hkp-gateway)" = success
check journal_has_no_prefix_text bash -c "! journalctl -u hkp-gateway -o cat | grep -q '^<[0-9]>'"
echo done
systemctl --no-block poweroff
