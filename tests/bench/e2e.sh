#!/bin/bash
# e2e.sh: the end-to-end benchmark of issue 5 (docs/testing.md,
# "Benchmarks"), relayd and Postfix + OpenDKIM side by side on the same
# workload.  Not a test: it prints figures and is not run by .ci/run.
#
#   tests/bench/e2e.sh [BUILD_DIR] [MESSAGES] [SESSIONS]
#
# Needs root (Postfix's master, smtp-sink -u, dnsmasq) and Debian 12's
#   apt-get install postfix opendkim opendkim-tools sasl2-bin \
#       libsasl2-modules dnsmasq-base openssl util-linux
# (with an /usr/sbin/policy-rc.d that exits 101 first, so that installing
# postfix and opendkim starts no system daemons).
#
# Workload: BUILD_DIR/tests/bench/loadgen submits MESSAGES (default 10000)
# messages of 2 KiB with AUTH PLAIN over SESSIONS (20) concurrent
# sessions; every message is DKIM-signed with an RSA-2048 key and relayed
# to smtp-sink (Postfix's test sink, /usr/sbin/smtp-sink) on a loopback
# port; the clock runs from the first message (after the sessions have
# authenticated) until the sink has every message and the queue is empty.
# Then one session sends up to 2,000 messages (at most 10 s) for the
# single-session final-dot-to-250 latency (issue 5: median under 1 ms).
# Printed per side: messages/s end to end, CPU time per message (all the
# side's processes: user + system, children included, from /proc) and
# the loadgen figures (submission rate, dot-to-250 p50/p99); then the
# ratio relayd/postfix.
#
# relayd: mode = mx, [dns] servers = a dnsmasq on loopback serving
# "rcpt-domain.org MX 10 sink.bench.test" and "sink.bench.test A
# 127.0.0.1", [delivery] mx_port = the sink's port, tls = opportunistic;
# workers = 0.  When `relayd -t` refuses mode = mx, it prints "relayd mx
# delivery not available in this build" and goes on with Postfix.
#
# Postfix: a private instance (config, queue and data directories in the
# temporary directory; master -d, stopped by PID), SASL AUTH from a cyrus
# sasldb (PLAIN, plaintext allowed on loopback, as relayd's insecure_auth
# listener), relayhost = [127.0.0.1]:SINK, OpenDKIM in sign mode (milter
# on a UNIX socket, Mode s, RSA-2048, relaxed/relaxed).  Postfix's defaults
# otherwise (its queue files are fsynced, as relayd's spool).
#
# Every process started here is stopped by its PID on exit; the
# temporary directory under /var/tmp (on disk) is removed unless
# RELAYD_KEEP=1.  Each wait is bounded (queue drain: 300 s).
#
# Knobs: E2E_SIDES (default "relayd postfix"), E2E_DUMP=0 (the sink only
# counts), E2E_LOADGEN=PATH (another load client binary, for comparing
# two clients on the same relayd).
set -euo pipefail

cd "$(dirname "$0")/../.."
BUILD=${1:-build}
MESSAGES=${2:-10000}
SESSIONS=${3:-20}
SIDES=${E2E_SIDES:-relayd postfix}
relayd=$BUILD/relayd
relayctl=$BUILD/relayctl
loadgen=${E2E_LOADGEN:-$BUILD/tests/bench/loadgen}
PF_SBIN=/usr/lib/postfix/sbin
for b in "$relayd" "$relayctl" "$loadgen" /usr/sbin/smtp-sink \
    "$PF_SBIN/master" /usr/sbin/opendkim /usr/sbin/saslpasswd2 \
    /usr/sbin/dnsmasq; do
	[ -x "$b" ] || { echo "e2e.sh: $b missing (see the apt-get line at the top; ninja -C $BUILD)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "e2e.sh: run as root" >&2; exit 1; }

d=$(mktemp -d -p /var/tmp relayd-e2e.XXXXXX)
chmod 755 "$d"
pids=()		# every process started here, stopped in reverse order

stop_pid() {	# PID [SECONDS to wait after TERM]
	local p=$1 w=${2:-10} i
	kill -0 "$p" 2>/dev/null || return 0
	kill -TERM "$p" 2>/dev/null || true
	for ((i = 0; i < w * 5; i++)); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.2
	done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}
sinkdump=
cleanup() {
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		stop_pid "${pids[i]}" 3
	done
	# The sink's dump is in memory: removed even with RELAYD_KEEP.
	[ -n "$sinkdump" ] && rm -rf "$sinkdump"
	if [ -n "${RELAYD_KEEP:-}" ]; then
		echo "kept $d"
	else
		for _ in 1 2 3 4 5; do
			rm -rf "$d" 2>/dev/null && break
			sleep 0.2
		done
	fi
}
trap cleanup EXIT

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {	# PORT PID: up to 20 s
	local i
	for ((i = 0; i < 200; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# CPU seconds (user + system, waited-for children included) of the
# given PIDs and all their live descendants.
cat >"$d/cputree.py" <<'PY'
import os, sys
hz = os.sysconf("SC_CLK_TCK")
st = {}
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        with open(f"/proc/{p}/stat") as f:
            s = f.read()
    except OSError:
        continue
    x = s[s.rindex(")") + 2:].split()
    # fields after comm: state ppid ... utime(14) stime cutime cstime
    st[int(p)] = (int(x[1]), sum(int(v) for v in x[11:15]))
todo = [int(a) for a in sys.argv[1:]]
seen = set()
tot = 0
while todo:
    p = todo.pop()
    if p in seen or p not in st:
        continue
    seen.add(p)
    tot += st[p][1]
    todo.extend(c for c, (pp, _) in st.items() if pp == p)
print("%.3f" % (tot / hz))
PY
cpu_tree() { /usr/bin/python3 "$d/cputree.py" "$@"; }

# CPU seconds of each thread name of PID ("relayd 1.23 relayd-io 4.56"),
# user + system; with a second argument, a file of such a line read
# before: the difference, per message (the first argument of the line
# read from the third argument), in us.
cat >"$d/threads.py" <<'PY'
import os, sys
hz = os.sysconf("SC_CLK_TCK")
pid = sys.argv[1]
now = {}
for t in os.listdir(f"/proc/{pid}/task"):
    try:
        with open(f"/proc/{pid}/task/{t}/stat") as f:
            s = f.read()
    except OSError:
        continue
    name = s[s.index("(") + 1:s.rindex(")")]
    x = s[s.rindex(")") + 2:].split()
    now[name] = now.get(name, 0) + (int(x[11]) + int(x[12])) / hz
if len(sys.argv) == 2:
    print(" ".join(f"{k} {v:.3f}" for k, v in sorted(now.items())))
else:
    w = open(sys.argv[2]).read().split()
    before = dict(zip(w[0::2], map(float, w[1::2])))
    n = int(sys.argv[3])
    print(", ".join(f"{k} {(v - before.get(k, 0)) / n * 1e6:.0f}"
                    for k, v in sorted(now.items())) if n else "-")
PY

sigs() {	# DKIM-Signature fields with a=$1 seen by the sink
	grep -c "^DKIM-Signature:.*a=$1\\|^[ 	].*a=$1;" "$sinkdump/all" 2>/dev/null || true
}

sink_count() {	# [sess]: messages (default) or SMTP sessions so far
	tr '\r' '\n' <"$d/sink.out" | awk -v k="${1:-mesg}=" '
	    { for (i = 1; i <= NF; i++) if (index($i, k) == 1) n = substr($i, length(k) + 1) }
	    END {print n + 0}'
}

# Messages in a queue directory tree (files under the given directories;
# not relayd's recycled spool files, tmp/r.N, which hold no message).
queue_files() {
	local n=0 x
	for x in "$@"; do
		[ -d "$x" ] && n=$((n + $(find "$x" -type f ! -name 'r.*' | wc -l)))
	done
	echo "$n"
}

now() { date +%s.%N; }

# --- common pieces ------------------------------------------------------
sink_port=$(free_port)
# -D appends every message to one file: the DKIM-Signature fields are
# counted there.  The sink stands for a remote MX, so its file is kept
# off the spool's disk, in /dev/shm: a syncfs of relayd's spool (or any
# flush of a shared disk) would otherwise write the sink's 20 MB/s too.
# (Until 22 Nov 2026 the file was in the work directory on disk.)
sinkdump=$(mktemp -d -p /dev/shm relayd-e2e-sink.XXXXXX 2>/dev/null ||
    mktemp -d -p "$d" sinkdump.XXXXXX)
chmod 777 "$sinkdump"
# E2E_DUMP=0: the sink only counts (no -D): its CPU is then not taken
# from the two cores the sides share, and signatures are not counted.
dump=(-D "$sinkdump/all")
[ "${E2E_DUMP:-1}" = 0 ] && dump=()
/usr/sbin/smtp-sink -u nobody -c -m 1000 "${dump[@]}" \
    "127.0.0.1:$sink_port" 1024 >"$d/sink.out" 2>"$d/sink.err" &
pids+=($!)
sink_pid=$!
wait_port "$sink_port" "$sink_pid" || { echo "smtp-sink did not start: $(cat "$d/sink.err")"; exit 1; }

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out "$d/dkim.pem" 2>/dev/null
chmod 600 "$d/dkim.pem"

echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load:$(uptime | sed 's/.*load average://')"
# The machine's speed now (it varies from day to day on a shared host):
# RSA-2048 signatures per second on all cores at once, OpenSSL's figure.
echo "== machine: $(openssl speed -multi "$(nproc)" -seconds 2 rsa2048 2>/dev/null | awk '/^rsa 2048/ {print $(NF-1)}') RSA-2048 signatures/s on $(nproc) cores (openssl speed -multi $(nproc))"
echo "== workload: $MESSAGES messages of 2048 bytes, AUTH PLAIN, $SESSIONS sessions, DKIM RSA-2048, to smtp-sink on 127.0.0.1:$sink_port"

# run_side NAME QUEUE_DIRS... : the workload against $sub_port, CPU of
# $side_pids, timed until the sink has every message and QUEUE_DIRS are
# empty.  Sets res_rate and res_cpu.
run_side() {
	local name=$1 load0 base0 sess0 sig0 cpu0 cpu1 t0 t1 setup n q out i
	shift
	load0=$(uptime | sed 's/.*load average: //')
	base0=$(sink_count)
	sess0=$(sink_count sess)
	sig0=$(sigs rsa-sha256)
	rm -f "$d/cpu0" "$d/t0"
	# Sampled by loadgen once the sessions have authenticated, just
	# before its clock starts: relayd's deliberately slow password
	# hashing is not counted (Postfix's sasldb check is cheap).
	out=$("$loadgen" --port "$sub_port" --sessions "$SESSIONS" \
	    --at-start "/usr/bin/python3 $d/cputree.py ${side_pids[*]} >$d/cpu0; date +%s.%N >$d/t0; /usr/bin/python3 $d/threads.py ${side_pids[0]} >$d/thr0" \
	    --count "$MESSAGES" --duration 600 --size 2048 --user bench \
	    --pass bench-pw --from bench@own-domain.com \
	    --rcpt rcpt@rcpt-domain.org 2>&1) || true
	echo "$out" | sed 's/^/  loadgen: /'
	setup=$(awk '/connected and authenticated in/ {print $(NF-3)}' <<<"$out")
	cpu0=$(cat "$d/cpu0" 2>/dev/null || echo 0)
	t0=$(cat "$d/t0" 2>/dev/null || echo 0)
	n=$(awk '/^messages ok/ {sub(",", "", $3); print $3}' <<<"$out")
	n=${n:-0}
	# Drain: at most 300 s.
	for ((i = 0; i < 3000; i++)); do
		q=$(queue_files "$@")
		if [ "$q" = 0 ] && { [ "$expect_sink" = 0 ] ||
		    [ $(($(sink_count) - base0)) -ge "$n" ]; }; then
			break
		fi
		sleep 0.1
	done
	t1=$(now)
	cpu1=$(cpu_tree "${side_pids[@]}")
	q=$(queue_files "$@")
	local got=$(($(sink_count) - base0))
	[ "$expect_sink" = 0 ] && got=$n
	local thr=$(/usr/bin/python3 "$d/threads.py" "${side_pids[0]}" "$d/thr0" "$got" 2>/dev/null || echo -)
	[ "$got" -lt "$n" ] && echo "$name: INCOMPLETE: the sink has $got of the $n accepted messages after the 300 s bound"
	res_rate=$(awk -v n="$got" -v a="$t0" -v b="$t1" \
	    'BEGIN {printf "%.0f", n / (b - a)}')
	res_cpu=$(awk -v n="$got" -v a="$cpu0" -v b="$cpu1" \
	    'BEGIN {printf "%.1f", n ? (b - a) / n * 1e6 : 0}')
	echo "$name: $got of $n accepted messages at the sink, queue $q files; end to end $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') s (the sessions' connection and AUTH, ${setup:-?} s, not counted)"
	local sigtext="the sink saw $(($(sigs rsa-sha256) - sig0)) rsa-sha256 DKIM signatures for these $got messages"
	[ "${E2E_DUMP:-1}" = 0 ] && sigtext="signatures not counted (E2E_DUMP=0)"
	echo "$name: $sigtext; $(($(sink_count sess) - sess0)) SMTP sessions to it had ended (cached connections still open are not counted)"
	echo "$name: $res_rate messages/s end to end, $res_cpu us CPU per message ($(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {printf "%.2f", b - a}') s in all); load before $load0, after:$(uptime | sed 's/.*load average://')"
	case $name in relayd*) echo "$name: CPU per message by thread of pid ${side_pids[0]} (us): $thr" ;; esac
	echo "-- $name, one session (issue 5: median final-dot-to-250 under 1 ms): at most 2000 messages or 10 s"
	"$loadgen" --port "$sub_port" --sessions 1 --count 2000 --duration 10 \
	    --size 2048 --user bench --pass bench-pw \
	    --from bench@own-domain.com --rcpt rcpt@rcpt-domain.org 2>&1 |
	    grep -E 'throughput|latency|failed' | sed 's/^/  loadgen: /' || true
	for ((i = 0; i < 300; i++)); do
		[ "$(queue_files "$@")" = 0 ] && break
		sleep 0.1
	done
}

relayd_rate='' relayd_cpu='' postfix_rate='' postfix_cpu=''
expect_sink=1

# --- relayd -------------------------------------------------------------
run_relayd() {
	local r="$d/relayd" dns_port hash mode=mx
	mkdir -p "$r"
	dns_port=$(free_port)
	sub_port=$(free_port)
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$r/tls.key" \
	    -out "$r/tls.crt" -subj /CN=bench.test -days 2 2>/dev/null
	head -c 32 /dev/urandom >"$r/secret"
	chmod 600 "$r/secret" "$r/tls.key"
	hash=$(printf 'bench-pw\n' | "$relayctl" passwd)
	printf 'bench:%s:own-domain.com\n' "$hash" >"$r/users"
	cat >"$r/relayd.conf" <<CONF
[relayd]
hostname = bench.test
spool = $r/spool
secret_file = $r/secret
control_socket = $r/control.sock
workers = 0
log_level = warn

[listen plain]
address = 127.0.0.1:$sub_port
tls = none
role = submission
insecure_auth = yes
max_connections = 2000

[tls]
certificate = $r/tls.crt
key = $r/tls.key

[users]
file = $r/users

[domain own-domain.com]
bounce_domain = bounces.own-domain.com
dkim = b2026:$d/dkim.pem

[limits]
connections_per_ip = 2000

[delivery]
mode = mx
mx_port = $sink_port
tls = opportunistic

[dns]
servers = 127.0.0.1:$dns_port
CONF
	if ! "$relayd" -c "$r/relayd.conf" -t >"$r/check.log" 2>&1; then
		if ! grep -qi 'mx' "$r/check.log"; then
			echo "relayd -t refused the config:"
			cat "$r/check.log"
			return 0
		fi
		echo "relayd mx delivery not available in this build ($(head -1 "$r/check.log"))"
		# For reference only: the same workload into capture mode
		# (submission, signing, spool fsync, capture; no delivery).
		mode=capture
		sed -i "s|^mode = mx\$|mode = capture\ncapture_dir = $r/captured|" "$r/relayd.conf"
		"$relayd" -c "$r/relayd.conf" -t >"$r/check.log" 2>&1 ||
		    { cat "$r/check.log"; return 0; }
	fi
	/usr/sbin/dnsmasq -k --conf-file=/dev/null --no-resolv --no-hosts \
	    --no-daemon --listen-address=127.0.0.1 --bind-interfaces \
	    --port="$dns_port" --mx-host=rcpt-domain.org,sink.bench.test,10 \
	    --host-record=sink.bench.test,127.0.0.1 \
	    --local=/bench.test/ --local=/rcpt-domain.org/ --log-facility="$r/dnsmasq.log" \
	    --pid-file= --user=root 2>"$r/dnsmasq.err" &
	pids+=("$!")
	"$relayd" -c "$r/relayd.conf" >"$r/relayd.log" 2>&1 &
	local rpid=$!
	pids+=("$rpid")
	wait_port "$sub_port" "$rpid" || { echo "relayd did not start:"; tail -20 "$r/relayd.log"; return 0; }
	side_pids=("$rpid")
	if [ "$mode" = mx ]; then
		echo "== $("$relayd" -V 2>&1 || true), pid $rpid, mode = mx via dnsmasq on 127.0.0.1:$dns_port"
		run_side relayd "$r/spool/queue" "$r/spool/tmp"
		relayd_rate=$res_rate relayd_cpu=$res_cpu
	else
		echo "== $("$relayd" -V 2>&1 || true), pid $rpid, REFERENCE ONLY: mode = capture (no delivery; not comparable end to end)"
		expect_sink=0
		run_side relayd-capture "$r/spool/queue" "$r/spool/tmp"
		expect_sink=1
		echo "relayd-capture: $(find "$r/captured" -name '*.eml' | wc -l) messages captured"
	fi
	stop_pid "$rpid" 10
}

# --- Postfix + OpenDKIM ---------------------------------------------------
run_postfix() {
	local p="$d/postfix" q x opid mpid
	mkdir -p "$p/etc/sasl" "$p/dkim"
	sub_port=$(free_port)
	chmod 755 "$p" "$p/dkim"
	printf 'pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: %s\nmech_list: PLAIN LOGIN\n' \
	    "$p/sasldb2" >"$p/etc/sasl/smtpd.conf"
	printf 'bench-pw' | saslpasswd2 -p -c -f "$p/sasldb2" -u bench.test bench
	chown root:postfix "$p/sasldb2"
	chmod 640 "$p/sasldb2"
	cp "$d/dkim.pem" "$p/dkim/key.pem"
	chmod 600 "$p/dkim/key.pem"
	cat >"$p/opendkim.conf" <<CONF
Mode s
Socket local:$p/dkim/opendkim.sock
UMask 000
PidFile $p/dkim/opendkim.pid
Domain own-domain.com
Selector b2026
KeyFile $p/dkim/key.pem
Canonicalization relaxed/relaxed
SignatureAlgorithm rsa-sha256
InternalHosts 127.0.0.1
Syslog no
RequireSafeKeys false
CONF
	/usr/sbin/opendkim -f -x "$p/opendkim.conf" >"$p/opendkim.log" 2>&1 &
	opid=$!
	pids+=("$opid")
	for _ in $(seq 100); do
		[ -S "$p/dkim/opendkim.sock" ] && break
		kill -0 "$opid" 2>/dev/null || break
		sleep 0.1
	done
	[ -S "$p/dkim/opendkim.sock" ] || { echo "opendkim did not start: $(cat "$p/opendkim.log")"; return 0; }

	cat >"$p/etc/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $p/queue
data_directory = $p/data
mail_owner = postfix
setgid_group = postdrop
inet_protocols = ipv4
inet_interfaces = 127.0.0.1
myhostname = postfix.bench.test
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtpd_peername_lookup = no
maillog_file = $p/maillog
maillog_file_prefixes = $p
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = $p/etc/sasl
smtpd_sasl_local_domain = bench.test
smtpd_sasl_security_options = noanonymous
smtpd_relay_restrictions = permit_sasl_authenticated, reject
relayhost = [127.0.0.1]:$sink_port
smtp_tls_security_level = may
smtpd_milters = unix:$p/dkim/opendkim.sock
non_smtpd_milters =
milter_default_action = tempfail
milter_protocol = 6
local_header_rewrite_clients =
always_add_missing_headers = no
in_flow_delay = 0
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
notify_classes =
CONF
	{
		echo "127.0.0.1:$sub_port inet n - n - - smtpd"
		cat <<'MASTER'
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
MASTER
	} >"$p/etc/master.cf"
	# Postfix waits while main.cf is under a second old.
	touch -d '1 minute ago' "$p/etc/main.cf" "$p/etc/master.cf"
	# The queue as /etc/postfix/postfix-files lays it out.
	install -d -m 755 "$p/queue"
	for x in active bounce corrupt defer deferred flush hold incoming \
	    private saved trace; do
		install -d -m 700 -o postfix "$p/queue/$x"
	done
	install -d -m 730 -o postfix -g postdrop "$p/queue/maildrop"
	install -d -m 710 -o postfix -g postdrop "$p/queue/public"
	install -d -m 755 "$p/queue/pid"
	install -d -m 700 -o postfix "$p/data"
	MAIL_CONFIG="$p/etc" "$PF_SBIN/master" -d -c "$p/etc" >"$p/master.err" 2>&1 &
	mpid=$!
	pids+=("$mpid")
	wait_port "$sub_port" "$mpid" || { echo "postfix did not start:"; tail -20 "$p/maillog" "$p/master.err" 2>/dev/null; return 0; }
	echo "== postfix $(/usr/sbin/postconf -d -h mail_version 2>/dev/null), master pid $mpid; opendkim $(/usr/sbin/opendkim -V 2>/dev/null | head -1 | awk '{print $NF}'), pid $opid"
	side_pids=("$mpid" "$opid")
	run_side postfix "$p/queue/incoming" "$p/queue/active" \
	    "$p/queue/deferred" "$p/queue/maildrop" "$p/queue/hold"
	postfix_rate=$res_rate postfix_cpu=$res_cpu
	echo "postfix: $(grep -c 'status=sent' "$p/maillog" 2>/dev/null || true) status=sent, $(grep -c 'status=deferred' "$p/maillog" 2>/dev/null || true) status=deferred in its maillog"
	stop_pid "$mpid" 10
	stop_pid "$opid" 2
}

for side in $SIDES; do
	case $side in
	relayd) run_relayd ;;
	postfix) run_postfix ;;
	*) echo "e2e.sh: E2E_SIDES: relayd and/or postfix, not $side" >&2; exit 1 ;;
	esac
done

echo "== summary (load:$(uptime | sed 's/.*load average://'))"
echo "relayd:  ${relayd_rate:-n/a} messages/s, ${relayd_cpu:-n/a} us CPU/message"
echo "postfix: ${postfix_rate:-n/a} messages/s, ${postfix_cpu:-n/a} us CPU/message"
if [ -n "$relayd_rate" ] && [ -n "$postfix_rate" ]; then
	awk -v a="$relayd_rate" -v b="$postfix_rate" -v c="$relayd_cpu" -v e="$postfix_cpu" 'BEGIN {
		printf "ratio relayd/postfix: %.2fx messages/s, %.2fx CPU per message\n",
		    b ? a / b : 0, e ? c / e : 0 }'
else
	echo "ratio relayd/postfix: not available (one side did not run)"
fi
