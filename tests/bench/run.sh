#!/bin/bash
# run.sh: the relayd capture-mode benchmarks of issues 2 and 5
# (docs/testing.md, "Benchmarks").  Not a test: it prints figures and is
# not run by .ci/run.
#
#   tests/bench/run.sh [BUILD_DIR] [SECONDS] [SESSIONS]
#
# For each DKIM key type in BENCH_KEYS (default "rsa ed25519"): starts
# relayd (BUILD_DIR/relayd, default build/) in capture mode with a
# temporary config under /var/tmp (on disk, so fsync costs what it
# costs), a plain listener with insecure_auth = yes, connections_per_ip
# and max_connections high, workers = 0 and a [domain own-domain.com]
# signing with one key of that type (RSA-2048 or Ed25519: relayd signs
# every message); runs BUILD_DIR/tests/bench/loadgen with SESSIONS (20)
# authenticated sessions of 2 KiB messages for SECONDS (10), then one
# session for at most SECONDS or 5,000 messages (the single-session median
# final-dot-to-250 latency of issue 5, target under 1 ms); stops relayd by
# its PID.  Then, with the RSA key, the 10,000 idle connections test
# (tests/bench/idle.py; issue 2: under 256 MiB resident).  Removes the
# temporary directory (RELAYD_KEEP=1 keeps it).
set -euo pipefail

cd "$(dirname "$0")/../.."
BUILD=${1:-build}
SECS=${2:-10}
SESSIONS=${3:-20}
KEYS=${BENCH_KEYS:-rsa ed25519}
relayd=$BUILD/relayd
relayctl=$BUILD/relayctl
loadgen=$BUILD/tests/bench/loadgen
for b in "$relayd" "$relayctl" "$loadgen"; do
	[ -x "$b" ] || { echo "run.sh: $b missing (ninja -C $BUILD)" >&2; exit 1; }
done

d=$(mktemp -d -p /var/tmp relayd-bench.XXXXXX)
pid=
stop_relayd() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	pid=
}
cleanup() {
	stop_relayd
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
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/rsa.pem" 2>/dev/null
openssl genpkey -algorithm ED25519 -out "$d/ed25519.pem" 2>/dev/null
head -c 32 /dev/urandom >"$d/secret"
chmod 600 "$d/secret" "$d/tls.key" "$d/rsa.pem" "$d/ed25519.pem"
hash=$(printf 'bench-pw\n' | "$relayctl" passwd)
printf 'bench:%s:own-domain.com\n' "$hash" >"$d/users"

# write_conf KEYTYPE: relayd.conf signing with $d/KEYTYPE.pem.
write_conf() {
	cat >"$d/relayd.conf" <<CONF
[relayd]
hostname = bench.test
spool = $d/$1/spool
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
dkim = b$1:$d/$1.pem

[limits]
connections_per_ip = 20000

[delivery]
mode = capture
capture_dir = $d/$1/captured
CONF
}

start_relayd() {
	# Each case in directories of its own, and nothing deleted until the
	# end: ext4 without a journal scans past every inode freed in the
	# last 1-5 minutes when it allocates one, so a deletion of the
	# previous case's files would slow this one down.
	mkdir -p "$d/$1"
	write_conf "$1"
	"$relayd" -c "$d/relayd.conf" -t >"$d/check.log" 2>&1 ||
	    { echo "relayd -t refused the config:"; cat "$d/check.log"; exit 1; }
	"$relayd" -c "$d/relayd.conf" >"$d/relayd.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || { cat "$d/relayd.log" >&2; exit 1; }
		sleep 0.1
	done
	echo "relayd did not listen in 10 s" >&2
	exit 1
}

# Busy jiffies of the whole machine: user, nice, system, irq, softirq, steal.
busy() {
	awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}

lg() {
	"$loadgen" --port "$port" --size 2048 --user bench --pass bench-pw \
	    --from bench@own-domain.com --rcpt rcpt@rcpt-domain.org \
	    --pid "$pid" "$@" || echo "loadgen reported failures"
}

ulimit -n 30000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $($relayd -V 2>&1 || true), $(nproc) cores, load:$(uptime | sed 's/.*load average://')"
# The machine's speed now (it varies from day to day on a shared host):
# RSA-2048 signatures per second on all cores at once, OpenSSL's figure.
echo "== machine: $(openssl speed -multi "$(nproc)" -seconds 2 rsa2048 2>/dev/null | awk '/^rsa 2048/ {print $(NF-1)}') RSA-2048 signatures/s on $(nproc) cores (openssl speed -multi $(nproc))"
echo "== spool on $(df --output=source,fstype "$d" | tail -1), capture mode (every message fsynced, then captured)"
for k in $KEYS; do
	case $k in
	rsa) kname="RSA-2048" ;;
	ed25519) kname="Ed25519" ;;
	*) echo "run.sh: BENCH_KEYS: rsa or ed25519, not $k" >&2; exit 1 ;;
	esac
	start_relayd "$k"
	echo "== DKIM key $kname (dkim = b$k:...), relayd pid $pid"
	echo "-- throughput: $SESSIONS sessions, 2048-byte messages, ${SECS} s"
	b0=$(busy) w0=$(date +%s.%N)
	lg --sessions "$SESSIONS" --duration "$SECS" | tee "$d/lg.out"
	b1=$(busy) w1=$(date +%s.%N)
	# The whole machine: relayd, loadgen, the kernel's writeback and
	# interrupts; what 2 cores allow per message at a rate R is 2/R.
	awk -v b0="$b0" -v b1="$b1" -v w0="$w0" -v w1="$w1" -v hz="$(getconf CLK_TCK)" \
	    -v n="$(awk '/^messages ok/ {print $3}' "$d/lg.out")" -v c="$(nproc)" \
	    'BEGIN { s = (b1 - b0) / hz; if (n > 0) printf "machine busy CPU (every process and the kernel) %.2f s, %.1f us per message, %.0f%% of %d cores\n", s, s / n * 1e6, s / (w1 - w0) / c * 100, c }'
	# relayd answers 250 once the message is in queue/; capture follows.
	# Wait (at most 60 s) for the queue to drain before going on.
	t0=$(date +%s.%N)
	for _ in $(seq 600); do
		[ "$(find "$d/$k/spool/queue" -type f 2>/dev/null | wc -l)" = 0 ] && break
		sleep 0.1
	done
	echo "captured: $(find "$d/$k/captured" -name '*.eml' 2>/dev/null | wc -l) messages, queue: $(find "$d/$k/spool/queue" -type f 2>/dev/null | wc -l) files, $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s after the last 250"
	if f=$(find "$d/$k/captured" -name '*.eml' -print -quit 2>/dev/null) && [ -n "$f" ]; then
		echo "signature of one captured message: $(grep -m1 -o 'a=[a-z0-9-]*' "$f" || echo none)"
	fi
	echo "-- single session (issue 5: median final-dot-to-250 under 1 ms): at most 5000 messages or ${SECS} s"
	lg --sessions 1 --count 5000 --duration "$SECS"
	if [ "$k" != rsa ]; then
		stop_relayd
	else
		echo "== idle: 10000 connections (relayd with the RSA-2048 key)"
		/usr/bin/python3 tests/bench/idle.py --port "$port" --pid "$pid" --count 10000 --sources 8
		kill -0 "$pid" 2>/dev/null && echo "relayd still running" || echo "relayd died: $(tail -5 "$d/relayd.log")"
		stop_relayd
	fi
done
echo "== done, load:$(uptime | sed 's/.*load average://')"
