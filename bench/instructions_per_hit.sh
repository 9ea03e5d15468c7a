#!/usr/bin/env bash
# Instructions the gateway spends on one cached op=get by fingerprint, counted by callgrind (the
# count is repeatable on a noisy machine, unlike wall time). One network thread; the same
# keep-alive connection sends 1,000 and then 3,000 requests in two runs, and the difference of
# the totals divided by 2,000 is the cost of one request (startup cancels out).
#   bench/instructions_per_hit.sh [BUILD_DIR] [GATEWAY_BINARY]
# TARGETS=unique gives every request its own target (an extra `&n=<i>` parameter, which HKP
# servers ignore), so none is a reused answer: the cost of a hit through the handler, as random
# lookups over a large cache pay it.
# SHAPE=http10 sends each request as dirmngr does: HTTP/1.0 on a new connection, which the
# gateway closes after the answer (the count then includes accepting and closing).
# FRONT=vks asks /vks/v1/by-fingerprint/<fpr> instead; KEY=<file> FPR=<hex> caches and asks
# another key (a v6 one: FRONT=vks, as /pks/lookup never serves v6 keys).
# KEEP_PROFILE=PREFIX keeps both callgrind files (PREFIX.1000, PREFIX.3000): what differs
# between them per function is what the 2,000 extra requests cost.
# GATEWAY_SERVER adds lines to the gateway's [server] table ("access_log_sample = 0").
# Prints one line. Loopback only; installs valgrind when missing.
set -euo pipefail
build=${1:-build}
binary=${2:-$build/gateway/app/hkp-gateway}
data=$build/tests/data
[ -f "$data/keys.env" ] || "$(dirname "$0")/../tests/fixtures/make-fixtures.sh" "$data" >/dev/null
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
fpr=${FPR:-$(grep '^ALICE_FPR=' "$data/keys.env" | cut -d= -f2)}
key=${KEY:-$data/alice.asc}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
read -r hkp admin < <(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
cat > "$work/gw.toml" <<TOML
[server]
threads = 1
listen = ["127.0.0.1:$hkp"]
${GATEWAY_SERVER:-}
[admin]
listen = "127.0.0.1:$admin"
[cache]
path = "$work/cache"
TOML
"$binary" --config "$work/gw.toml" cache import "$key" >/dev/null

client() {  # N requests on one keep-alive connection (SHAPE=http10: a connection each), all 200
  python3 - "$1" "$hkp" "$fpr" "${TARGETS:-same}" "${FRONT:-hkp}" "${SHAPE:-keepalive}" <<'PY'
import socket, sys
n, port, fpr, targets, front, shape = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
s = None if shape == "http10" else socket.create_connection(("127.0.0.1", port))
buf = b""
for i in range(n):
    extra = "&n=%06d" % i if targets == "unique" else ""
    target = ("/vks/v1/by-fingerprint/%s?x=1%s" % (fpr, extra)) if front == "vks" else \
        ("/pks/lookup?op=get&options=mr&search=0x%s%s" % (fpr, extra))
    if shape == "http10":
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(("GET %s HTTP/1.0\r\nHost: x\r\n\r\n" % target).encode())
        answer = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            answer += chunk
        c.close()
        assert answer.startswith(b"HTTP/1.0 200"), answer[:40]
        continue
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target).encode())
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode()
            length = int([l.split(":")[1] for l in head.split("\r\n") if l.lower().startswith("content-length")][0])
            if len(buf) >= end + 4 + length:
                assert head.startswith("HTTP/1.1 200"), head.splitlines()[0]
                buf = buf[end + 4 + length:]
                break
        buf += s.recv(65536)
PY
}

declare -A total
for n in 1000 3000; do
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.$n" "$binary" --config "$work/gw.toml" \
    >/dev/null 2>"$work/valgrind.$n" &
  pid=$!
  for _ in $(seq 150); do
    curl -sf "http://127.0.0.1:$admin/healthz" >/dev/null 2>&1 && break
    sleep 0.2
  done
  client "$n"
  kill -TERM "$pid"
  wait "$pid" || true
  total[$n]=$(cat "$work"/cg.$n* | awk '/^summary:/ {s += $2} END {print s}')
done
echo "cached op=get by fingerprint ($([ "${TARGETS:-same}" = unique ] && echo "every target new: through the handler" || echo "one target: reused answers")$([ "${SHAPE:-}" = http10 ] && echo ", HTTP/1.0 on a new connection each")): $(( (total[3000] - total[1000]) / 2000 )) instructions per request (callgrind, one network thread)"
[ -z "${KEEP_PROFILE:-}" ] || for n in 1000 3000; do cat "$work/cg.$n"* > "$KEEP_PROFILE.$n"; done
