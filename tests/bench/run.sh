#!/bin/bash
# run.sh: the relayd benchmarks (docs/testing.md).  Not a test: it prints
# figures and is not run by .ci/run.
#
#   tests/bench/run.sh [BUILD_DIR] [SECONDS] [SESSIONS]
#
# Starts relayd (BUILD_DIR/relayd, default build/) in capture mode with a
# temporary config under /var/tmp (on disk, so fsync costs what it costs),
# a plain listener with insecure_auth = yes, connections_per_ip and
# max_connections high and workers = 0; runs BUILD_DIR/tests/bench/loadgen
# with SESSIONS (20) authenticated sessions of 2 KiB messages for SECONDS
# (10), then the 10,000 idle connections test; stops relayd by its PID and
# removes the temporary directory (RELAYD_KEEP=1 keeps it).
set -euo pipefail

cd "$(dirname "$0")/../.."
BUILD=${1:-build}
SECS=${2:-10}
SESSIONS=${3:-20}
relayd=$BUILD/relayd
relayctl=$BUILD/relayctl
loadgen=$BUILD/tests/bench/loadgen
for b in "$relayd" "$relayctl" "$loadgen"; do
	[ -x "$b" ] || { echo "run.sh: $b missing (ninja -C $BUILD)" >&2; exit 1; }
done

d=$(mktemp -d -p /var/tmp relayd-bench.XXXXXX)
pid=
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	if [ -n "${RELAYD_KEEP:-}" ]; then
		echo "kept $d"
	else
		rm -rf "$d"
	fi
}
trap cleanup EXIT

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/tls.key" -out "$d/tls.crt" \
    -subj /CN=bench.test -days 2 2>/dev/null
head -c 32 /dev/urandom >"$d/secret"
chmod 600 "$d/secret" "$d/tls.key"
hash=$(printf 'bench-pw\n' | "$relayctl" passwd)
printf 'bench:%s:own-domain.com\n' "$hash" >"$d/users"

cat >"$d/relayd.conf" <<CONF
[relayd]
hostname = bench.test
spool = $d/spool
secret_file = $d/secret
control_socket = $d/control.sock
workers = 0
log_level = warn

[listen plain]
address = 127.0.0.1:$port
tls = none
role = submission
insecure_auth = yes
max_connections = 20000

[tls]
certificate = $d/tls.crt
key = $d/tls.key

[users]
file = $d/users

[domain own-domain.com]
bounce_domain = bounces.own-domain.com

[limits]
connections_per_ip = 20000

[delivery]
mode = capture
capture_dir = $d/captured
CONF

ulimit -n 30000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
"$relayd" -c "$d/relayd.conf" >"$d/relayd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		break
	fi
	kill -0 "$pid" 2>/dev/null || { cat "$d/relayd.log" >&2; exit 1; }
	sleep 0.1
done

echo "== relayd $($relayd -V 2>&1 || true), pid $pid, $(nproc) cores, spool on $(df --output=source,fstype "$d" | tail -1)"
echo "== throughput: $SESSIONS sessions, 2048-byte messages, ${SECS} s"
"$loadgen" --port "$port" --sessions "$SESSIONS" --duration "$SECS" --size 2048 \
    --user bench --pass bench-pw --from bench@own-domain.com \
    --rcpt rcpt@rcpt-domain.org --pid "$pid" || echo "loadgen reported failures"
sleep 1
echo "captured: $(find "$d/captured" -name '*.eml' 2>/dev/null | wc -l) messages, queue: $(find "$d/spool/queue" -type f 2>/dev/null | wc -l) files"

echo "== idle: 10000 connections"
/usr/bin/python3 tests/bench/idle.py --port "$port" --pid "$pid" --count 10000 --sources 8
kill -0 "$pid" 2>/dev/null && echo "relayd still running" || echo "relayd died: $(tail -5 "$d/relayd.log")"
