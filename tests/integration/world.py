"""A small mail world on loopback for relayd's delivery tests.

Everything runs inside private network and mount namespaces that the test
process enters first with isolate():

  * the network namespace has only its own loopback interface, so nothing
    started by a test can reach the internet, whatever it is configured to
    do (a tool that would fall back to the machine's real resolver fails
    instead of leaking a query);
  * the mount namespace bind-mounts a private resolv.conf (nameserver
    127.0.0.1) over /etc/resolv.conf, so software that only reads
    resolv.conf (OpenDMARC through libresolv, postfix-policyd-spf-python
    through dnspython, Postfix itself) asks the test's DNS server.  Inside
    the namespace every 127.0.0.0/8 address is free, so the DNS server sits
    on port 53 and the MX hosts on port 25, as on the internet.

The world holds:

  * dnsmasq (from dnsmasq-base), authoritative for every name (local=/#/):
    the records of zone_records(), NXDOMAIN for anything else, no
    forwarding, no /etc/hosts;
  * receiver="postfix": a Postfix instance with its own config, queue and
    data directories under the world's temporary directory, listening on
    the MX addresses (127.0.0.2 = mx1.rcpt-domain.org and 127.0.0.3 =
    mx2.rcpt-domain.org, port 25, STARTTLS offered), checking SPF with
    postfix-policyd-spf-python (spawned from master.cf), DKIM with
    OpenDKIM (verify mode, milter) and DMARC with OpenDMARC (milter), and
    delivering every accepted message into one Maildir; deliveries()
    reads them back with their Authentication-Results parsed;
  * receiver="python": nothing on the MX addresses; a test calls
    receiver() to put an aiosmtpd MX there with programmable replies;
  * smarthost=True: a second Postfix instance at smtp.upstream.test
    (127.0.0.6), port 587, requiring STARTTLS and AUTH (Cyrus SASL with a
    sasldb file in the instance directory), relaying to the recipients'
    MX hosts found in the test DNS, from relay_ip.

    if __name__ == "__main__":
        world.isolate()               # re-executes the script, namespaced
        unittest.main()
    ...
    w = World(algorithms=("rsa", "ed25519"))
    ... send mail to 127.0.0.2:25, or run relayd with w.relayd_sections()
    for d in w.deliveries(want=1): d.results["dkim"] -> ["pass", ...]
    w.stop()

Run with Debian's /usr/bin/python3 as root (namespaces, Postfix).  Needs
the packages of etc/install-deps test.  See docs/dns.md for the records.
World.timings says how long each part took to start (about 1.5 s in all,
most of it RSA key generation).  With RELAYD_KEEP set, stop() keeps the
directory: dnsmasq.log (every query), mx/maillog and upstream/maillog
(Postfix), mx/*.conf (each checker's configuration).
"""
import atexit
import base64
import email
import email.policy
import glob
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from harness import free_port, wait_port

NS_MARK = "RELAYD_WORLD_NETNS"

SENDING_DOMAINS = ("own-domain.com", "tenant-b.net")
RCPT_DOMAIN = "rcpt-domain.org"
MX_HOSTS = (("mx1.rcpt-domain.org", "127.0.0.2", 10),
            ("mx2.rcpt-domain.org", "127.0.0.3", 20))
SENDER_MX_IP = "127.0.0.4"       # mx.<sending domain>: where DSNs arrive
IMPLICIT_MX_IP = "127.0.0.5"     # no-mx.org has only an A record
UPSTREAM_HOST = "smtp.upstream.test"
UPSTREAM_IP = "127.0.0.6"
UPSTREAM_PORT = 587
AUTHSERV_ID = "mx.rcpt-domain.org"
DMARC_RECORD = "v=DMARC1; p=reject; adkim=r; aspf=r"
POSTFIX_SBIN = "/usr/lib/postfix/sbin"


# --- process and namespace helpers -------------------------------------

def isolate():
    """Re-execute this script in new network and mount namespaces (once),
    bring up their loopback interface and bind-mount a resolv.conf naming
    only 127.0.0.1 over /etc/resolv.conf.  Call it in the script's main
    block before unittest.main(); it returns in the re-executed process
    (the same PID: unshare execs in place)."""
    if os.environ.get(NS_MARK) != "1":
        if os.geteuid() != 0:
            raise SystemExit("world: needs root (network namespace, Postfix)")
        os.environ[NS_MARK] = "1"
        sys.stdout.flush()
        sys.stderr.flush()
        # unshare execs the command in place: same PID for meson's timeout.
        os.execvp("unshare", ["unshare", "--net", "--mount",
                              "--propagation", "private", "--",
                              sys.executable] + sys.argv)
    check_isolated()
    signal.signal(signal.SIGTERM, _on_sigterm)
    if not os.path.isfile("/etc/resolv.conf"):
        raise SystemExit("world: /etc/resolv.conf is missing or dangling; "
                         "nothing to bind the private one over")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    rc = tempfile.NamedTemporaryFile("w", prefix="world-resolv-",
                                     suffix=".conf", delete=False)
    rc.write("# relayd test world: only the test's DNS server\n"
             "nameserver 127.0.0.1\noptions timeout:2 attempts:2\n")
    rc.close()
    os.chmod(rc.name, 0o644)
    subprocess.run(["mount", "--bind", rc.name, "/etc/resolv.conf"],
                   check=True)
    os.unlink(rc.name)      # the mount keeps the file; nothing left in /tmp
    with open("/etc/resolv.conf") as f:
        if "127.0.0.1" not in f.read():
            raise SystemExit("world: private resolv.conf not in place")


def _on_sigterm(signum, frame):
    # meson's timeout sends SIGTERM: stop every running World rather than
    # leave its daemons behind (unittest would catch a SystemExit).
    _stop_all()
    os._exit(128 + signum)


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL if the test process dies."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


_RUNNING = []     # Worlds not yet stopped
_PROCS = []       # every daemon started here and not yet stopped


def _stop_all():
    for w in list(_RUNNING):
        w.stop()
    for p in list(_PROCS):        # started by a World still being built
        stop_pid(p, 1)


def spawn(argv, **kw):
    """Popen in a new session, killed if this process dies, and recorded
    so that stop_pid or _stop_all ends it."""
    p = subprocess.Popen(argv, start_new_session=True,
                         preexec_fn=_die_with_parent, **kw)
    _PROCS.append(p)
    return p


atexit.register(_stop_all)


def check_isolated():
    """Raise unless this process is in a namespace with no interface but
    lo: the world must never run where it could reach the internet."""
    if os.environ.get(NS_MARK) != "1":
        raise RuntimeError("world: call world.isolate() first")
    ifs = sorted(name for _, name in socket.if_nameindex())
    if ifs != ["lo"]:
        raise RuntimeError(f"world: not in a private network namespace "
                           f"(interfaces {ifs})")


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=True,
                          capture_output=True, text=True, **kw).stdout


def smtp_quits(s, deadline):
    """Read the 220 greeting, QUIT and see the server close: a whole SMTP
    session (for harness.wait_port).  Postfix's smtpd talks to its milters
    before it greets, so when this is True that session's milter
    connections are over."""
    s.settimeout(max(0.5, deadline - time.time()))
    f = s.makefile("rb")
    line = f.readline()
    while line[3:4] == b"-":
        line = f.readline()
    if not line.startswith(b"220"):
        return False
    s.sendall(b"QUIT\r\n")
    while f.readline():
        pass                # until the server closes
    return True


def stop_pid(proc, timeout=10):
    """SIGTERM a Popen we started, then SIGKILL it after timeout s."""
    if proc in _PROCS:
        _PROCS.remove(proc)
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


# --- keys and certificates ---------------------------------------------

class DkimKey:
    """One DKIM key: domain, selector, algorithm ("rsa" or "ed25519"),
    path (PEM private key, relayd's format), txt (the record published
    at SELECTOR._domainkey.DOMAIN) and dkimpy_key (what dkim.sign takes:
    PEM for RSA, the base64 32-octet seed for Ed25519)."""

    def __init__(self, d, domain, selector, algorithm, bits=2048):
        self.domain, self.selector, self.algorithm = domain, selector, algorithm
        self.path = f"{d}/{domain}.{selector}.pem"
        if algorithm == "rsa":
            sh(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                f"rsa_keygen_bits:{bits}", "-out", self.path])
        elif algorithm == "ed25519":
            sh(["openssl", "genpkey", "-algorithm", "ED25519", "-out",
                self.path])
        else:
            raise ValueError(algorithm)
        os.chmod(self.path, 0o600)
        pub = subprocess.run(["openssl", "pkey", "-in", self.path, "-pubout",
                              "-outform", "DER"], check=True,
                             capture_output=True).stdout
        with open(self.path, "rb") as f:
            pem = f.read()
        if algorithm == "rsa":
            self.txt = "v=DKIM1; k=rsa; p=" + base64.b64encode(pub).decode()
            self.dkimpy_key = pem
        else:
            der = subprocess.run(["openssl", "pkey", "-in", self.path,
                                  "-outform", "DER"], check=True,
                                 capture_output=True).stdout
            self.txt = ("v=DKIM1; k=ed25519; p=" +
                        base64.b64encode(pub[-32:]).decode())
            self.dkimpy_key = base64.b64encode(der[-32:])

    @property
    def name(self):
        return f"{self.selector}._domainkey.{self.domain}"

    def sign(self, msg, headers=None):
        """A DKIM-Signature field made by dkimpy, to prepend to msg
        (CRLF bytes).  headers: the fields to sign; default those of From,
        To, Subject, Date and Message-ID that msg has."""
        import dkim
        if headers is None:
            head = msg.split(b"\r\n\r\n", 1)[0].lower()
            headers = [h for h in (b"from", b"to", b"subject", b"date",
                                   b"message-id")
                       if head.startswith(h + b":") or
                       (b"\r\n" + h + b":") in head]
        return dkim.sign(msg, self.selector.encode(), self.domain.encode(),
                         self.dkimpy_key,
                         signature_algorithm=(b"rsa-sha256"
                                              if self.algorithm == "rsa"
                                              else b"ed25519-sha256"),
                         include_headers=headers)


def make_ca(d, names_by_file):
    """A CA (EC P-256) and, for each {basename: [dns names]}, a leaf
    certificate and key signed by it.  Returns the CA certificate path."""
    sh(f"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
       f"-nodes -keyout {d}/ca.key -out {d}/ca.crt -subj '/CN=World Test CA' "
       f"-days 2 2>/dev/null")
    for base, names in names_by_file.items():
        san = ",".join(f"DNS:{n}" for n in names)
        with open(f"{d}/{base}.ext", "w") as f:
            f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                    f"extendedKeyUsage=serverAuth\n")
        sh(f"openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
           f"-nodes -keyout {d}/{base}.key -out {d}/{base}.csr "
           f"-subj '/CN={names[0]}' 2>/dev/null")
        sh(f"openssl x509 -req -in {d}/{base}.csr -CA {d}/ca.crt "
           f"-CAkey {d}/ca.key -CAcreateserial -days 2 -out {d}/{base}.crt "
           f"-extfile {d}/{base}.ext 2>/dev/null")
        os.chmod(f"{d}/{base}.key", 0o640)
    return f"{d}/ca.crt"


# --- DNS -----------------------------------------------------------------

class Zone:
    """The records dnsmasq serves: txt {name: text}, mx [(domain, host,
    pref)], a [(name, ip)].  A null MX is (domain, ".", 0)."""

    def __init__(self):
        self.txt, self.mx, self.a = {}, [], []

    def conf_lines(self):
        out = []
        for name, text in self.txt.items():
            if any(c in text for c in ',"\\'):
                raise ValueError(f"TXT for {name} has a comma, quote or "
                                 f"backslash")
            # RFC 1035 3.3.14: one character-string holds at most 255
            # octets; longer records are several strings, joined by readers.
            parts = [text[i:i + 250] for i in range(0, len(text), 250)]
            out.append(f"txt-record={name}," +
                       ",".join(f'"{p}"' for p in parts))
        for dom, host, pref in self.mx:
            out.append(f"mx-host={dom},{host},{pref}")
        for name, ip in self.a:
            out.append(f"host-record={name},{ip}")
        return out

    def text(self):
        """The records in zone-file form (for docs and debugging)."""
        out = []
        for name, text in self.txt.items():
            parts = [text[i:i + 250] for i in range(0, len(text), 250)]
            out.append(f"{name}. IN TXT " + " ".join(f'"{p}"' for p in parts))
        for dom, host, pref in self.mx:
            out.append(f"{dom}. IN MX {pref} {host if host == '.' else host + '.'}")
        for name, ip in self.a:
            out.append(f"{name}. IN A {ip}")
        return "\n".join(out) + "\n"


class Dnsmasq:
    """dnsmasq on HOST:PORT serving a Zone and nothing else."""

    def __init__(self, d, zone, host="127.0.0.1", port=53):
        self.host, self.port, self.dir = host, port, d
        self.conf = f"{d}/dnsmasq.conf"
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "# relayd test world: authoritative for everything, no upstream",
                "no-resolv", "no-hosts", "no-poll", "no-negcache",
                "local=/#/",            # NXDOMAIN for every name not below
                f"listen-address={host}", "bind-interfaces", f"port={port}",
                "local-ttl=1", "log-queries", f"log-facility={d}/dnsmasq.log",
                # Stay root: a change of user clears the parent-death signal.
                "user=root", "group=root",
                f"pid-file={d}/dnsmasq.pid", "cache-size=0",
            ] + zone.conf_lines()) + "\n")
        with open(f"{d}/dnsmasq.err", "wb") as err:
            self.proc = spawn(["dnsmasq", "--keep-in-foreground",
                               f"--conf-file={self.conf}"],
                              stdout=subprocess.DEVNULL, stderr=err)
        # Ready when its UDP port is taken (nothing else binds it here).
        end = time.time() + 10
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("dnsmasq exited: " +
                                   open(f"{d}/dnsmasq.err").read())
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                probe.bind((host, port))
            except OSError:
                break
            finally:
                probe.close()
            time.sleep(0.01)
        if self.query("rcpt-domain.org", "MX", quiet=True) is None:
            self.stop()
            raise RuntimeError("dnsmasq did not answer")

    def resolver(self):
        import dns.resolver
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = [self.host]
        r.port = self.port
        r.lifetime = 2
        return r

    def query(self, name, rtype="TXT", quiet=False):
        """The answer's records as text, [] for NODATA, 'NXDOMAIN', or
        None when the server did not answer."""
        import dns.exception
        import dns.resolver
        try:
            ans = self.resolver().resolve(name, rtype)
        except dns.resolver.NXDOMAIN:
            return "NXDOMAIN"
        except dns.resolver.NoAnswer:
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers, OSError):
            if quiet:
                return None
            raise
        if rtype == "TXT":
            return [b"".join(r.strings).decode() for r in ans]
        return [r.to_text() for r in ans]

    def stop(self):
        stop_pid(self.proc)


# --- Postfix and its checkers ---------------------------------------------

MASTER_CF_BASE = """\
# service type  private unpriv  chroot  wakeup  maxproc command
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
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """One Postfix instance: config_directory, queue_directory and
    data_directory under d; master runs in the foreground (master -d) so
    that stop() ends it by PID, and master ends its children."""

    def __init__(self, d, main, services, listen):
        self.dir = d
        self.listen = listen          # [(host, port)] to wait for
        os.makedirs(f"{d}/etc", exist_ok=True)
        self.conf = f"{d}/etc"
        base = {
            "compatibility_level": "3.6",
            "queue_directory": f"{d}/queue",
            "data_directory": f"{d}/data",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "inet_protocols": "ipv4",
            "mydestination": "",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "smtpd_peername_lookup": "no",
            "maillog_file": f"{d}/maillog",
            "maillog_file_prefixes": d,
            # Postfix accepts only addresses configured on an interface
            # here (lo has 127.0.0.1/8); the smtpd services of master.cf
            # bind their own 127.0.0.x addresses.
            "inet_interfaces": "127.0.0.1",
            "smtputf8_enable": "yes",
            "smtpd_tls_loglevel": "1",
            "smtp_tls_loglevel": "1",
            "message_size_limit": str(64 * 1024 * 1024),
            "queue_run_delay": "10s",
            "minimal_backoff_time": "10s",
            "maximal_backoff_time": "20s",
            "in_flow_delay": "0",
            # Leave every message as it came: no Date, Message-ID or
            # domain added for loopback clients (that would break DKIM
            # signatures listing absent fields).
            "local_header_rewrite_clients": "",
            "always_add_missing_headers": "no",
        }
        base.update(main)
        with open(f"{self.conf}/main.cf", "w") as f:
            for k, v in base.items():
                f.write(f"{k} = {v}\n")
        with open(f"{self.conf}/master.cf", "w") as f:
            f.write(MASTER_CF_BASE + services)
        # Postfix waits (0.3 s at a time) until main.cf is over a second
        # old, in case it is being edited: date the files back.
        past = time.time() - 60
        for f in ("main.cf", "master.cf"):
            os.utime(f"{self.conf}/{f}", (past, past))
        self.proc = None

    # The queue directories as /etc/postfix/postfix-files lays them out
    # (what "postfix check" would create, done here in milliseconds).
    QUEUE_DIRS = [(n, "postfix", None, 0o700) for n in (
        "active", "bounce", "corrupt", "defer", "deferred", "flush", "hold",
        "incoming", "private", "saved", "trace")] + [
        ("maildrop", "postfix", "postdrop", 0o730),
        ("public", "postfix", "postdrop", 0o710),
        ("pid", "root", None, 0o755)]

    def start(self, timeout=20):
        env = dict(os.environ, MAIL_CONFIG=self.conf)
        q = f"{self.dir}/queue"
        os.makedirs(q, mode=0o755)
        for name, owner, group, mode in self.QUEUE_DIRS:
            os.mkdir(f"{q}/{name}")
            shutil.chown(f"{q}/{name}", owner, group)
            os.chmod(f"{q}/{name}", mode)
        os.makedirs(f"{self.dir}/data", mode=0o700)
        shutil.chown(f"{self.dir}/data", "postfix")
        self.log = open(f"{self.dir}/master.err", "wb")
        self.proc = spawn([f"{POSTFIX_SBIN}/master", "-d", "-c", self.conf],
                          env=env, stdout=self.log, stderr=self.log)
        # One whole SMTP session at a time (smtp_quits): each smtpd session
        # opens its own connection to every milter, and the first two
        # milter connections must not come at the same moment (see
        # World._warm_up_mx).
        for host, port in self.listen:
            if not wait_port(host, port, timeout, self.proc,
                             ready=smtp_quits):
                raise RuntimeError(f"postfix in {self.dir} did not listen on "
                                   f"{host}:{port}:\n{self.maillog()[-3000:]}")

    def maillog(self):
        try:
            with open(f"{self.dir}/maillog", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        stop_pid(self.proc, 15)
        if getattr(self, "log", None):
            self.log.close()
            self.log = None


def start_daemon(argv, logpath, host, port, timeout=15):
    log = open(logpath, "wb")
    p = spawn(argv, stdout=log, stderr=log)
    log.close()
    if not wait_port(host, port, timeout, p):
        stop_pid(p)
        raise RuntimeError(f"{argv[0]} did not listen on {host}:{port}: " +
                           open(logpath, errors="replace").read()[-2000:])
    return p


# --- deliveries ------------------------------------------------------------

def unfold(v):
    return re.sub(r"\r?\n[ \t]+", " ", str(v))


def parse_ar(value):
    """(authserv-id, [(method, result, full resinfo text)]) of one
    Authentication-Results field (RFC 8601 section 2.2), comments removed."""
    v = unfold(value)
    # Drop comments (no nesting deeper than one level in practice).
    for _ in range(3):
        v = re.sub(r"\([^()]*\)", "", v)
    parts = [p.strip() for p in v.split(";")]
    authserv = parts[0].split()[0] if parts and parts[0] else ""
    out = []
    for p in parts[1:]:
        m = re.match(r"([a-z][a-z0-9-]*)\s*=\s*([a-z]+)", p, re.I)
        if m:
            out.append((m.group(1).lower(), m.group(2).lower(), p))
    return authserv, out


class Delivery:
    """One message delivered into the MX's Maildir.

    raw: bytes as stored (LF line ends, as Postfix writes Maildir files);
    msg: email.message.Message; mail_from (Return-Path), rcpt
    (Delivered-To); results: {"dkim": [...], "spf": [...], "dmarc": [...]}
    with the results of Authentication-Results fields whose authserv-id is
    the receiver's own, in field order (one entry per DKIM signature);
    details: the same with the full resinfo text; received_spf: the first
    word of Received-SPF, lower case, or None."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.raw = f.read()
        self.msg = email.message_from_bytes(self.raw,
                                            policy=email.policy.compat32)
        self.mail_from = unfold(self.msg.get("Return-Path", "")).strip().strip("<>")
        self.rcpt = unfold(self.msg.get("Delivered-To", "")).strip()
        self.results, self.details = {}, {}
        for v in self.msg.get_all("Authentication-Results", []):
            authserv, res = parse_ar(v)
            if authserv.lower() != AUTHSERV_ID:
                continue
            for method, result, text in res:
                self.results.setdefault(method, []).append(result)
                self.details.setdefault(method, []).append(text)
        rs = self.msg.get("Received-SPF")
        self.received_spf = unfold(rs).split()[0].lower() if rs else None

    def dkim(self):
        """[(result, d, s, a)] for each DKIM result of the receiver."""
        out = []
        for text in self.details.get("dkim", []):
            tags = dict(re.findall(r"header\.([dsa])=(\S+)", text))
            out.append((text.split("=", 1)[1].split()[0].lower(),
                        tags.get("d"), tags.get("s"), tags.get("a")))
        return out

    def crlf(self):
        """The message with CRLF line ends, as on the wire (the fields the
        receiver prepended stay; DKIM verifiers ignore unsigned ones)."""
        lines = self.raw.split(b"\n")
        return b"\r\n".join(lines)

    def header(self, name):
        v = self.msg.get(name)
        return None if v is None else unfold(v)

    def __repr__(self):
        return (f"<Delivery {os.path.basename(self.path)} from={self.mail_from} "
                f"rcpt={self.rcpt} results={self.results} "
                f"received_spf={self.received_spf}>")


# --- Python receiver ---------------------------------------------------------

class Receiver:
    """An aiosmtpd MX on HOST:PORT that records every transaction.

    reply: callable(transaction dict) -> "NNN text" or None (250); called
    at end of data.  rcpt_reply: callable(address) -> reply or None, at
    RCPT.  tls: a (certfile, keyfile) pair to offer STARTTLS.  got: list of
    {"peer", "helo", "mail_from", "rcpt", "data", "tls"} per transaction
    that reached the end of data (whatever the reply); commands: every
    MAIL, RCPT and DATA seen, with whether TLS was on."""

    def __init__(self, host, port=25, reply=None, rcpt_reply=None, tls=None):
        from aiosmtpd.controller import Controller
        self.host, self.port = host, port
        self.got, self.commands = [], []
        self.reply, self.rcpt_reply = reply, rcpt_reply
        outer = self

        class Handler:
            async def handle_MAIL(self, server, session, envelope, address,
                                  options):
                outer.commands.append(("MAIL", address,
                                       session.ssl is not None))
                envelope.mail_from = address
                envelope.mail_options.extend(options)
                return "250 2.1.0 Ok"

            async def handle_RCPT(self, server, session, envelope, address,
                                  options):
                outer.commands.append(("RCPT", address,
                                       session.ssl is not None))
                if outer.rcpt_reply:
                    r = outer.rcpt_reply(address)
                    if r:
                        return r
                envelope.rcpt_tos.append(address)
                return "250 2.1.5 Ok"

            async def handle_DATA(self, server, session, envelope):
                t = {"peer": session.peer[0], "helo": session.host_name,
                     "mail_from": envelope.mail_from,
                     "rcpt": list(envelope.rcpt_tos),
                     "data": envelope.original_content or envelope.content,
                     "tls": session.ssl is not None}
                outer.commands.append(("DATA", None, t["tls"]))
                outer.got.append(t)
                if outer.reply:
                    r = outer.reply(t)
                    if r:
                        return r
                return "250 2.0.0 Ok: accepted"

        kw = {}
        if tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(*tls)
            kw["tls_context"] = ctx
        self.ctl = Controller(Handler(), hostname=host, port=port,
                              ready_timeout=10, **kw)
        self.ctl.start()

    def wait(self, want=1, timeout=30):
        end = time.time() + timeout
        while len(self.got) < want and time.time() < end:
            time.sleep(0.05)
        return self.got

    def stop(self):
        self.ctl.stop()


# --- the world ----------------------------------------------------------------

class World:
    """DNS, keys, and a receiving side; see the module docstring.

    algorithms: DKIM keys made per sending domain: "rsa" (selector r2026,
    2048 bits) and/or "ed25519" (selector e2026).  receiver: "postfix",
    "python" or None.  smarthost: also start the upstream Postfix.
    relay_ip: the address the bounce domains' SPF authorizes (where relayd
    or the test's client connects from).  mx_addresses: the MX addresses
    the Postfix receiver listens on (default both; ("127.0.0.3",) leaves
    mx1 down).  extra_zone: callable(Zone) to add records before dnsmasq
    starts.  DSNs to alice@own-domain.com go to mx.own-domain.com
    (SENDER_MX_IP): receiver(host=world.SENDER_MX_IP) catches them."""

    def __init__(self, algorithms=("rsa",), receiver="postfix",
                 smarthost=False, relay_ip="127.0.0.1",
                 sending_domains=SENDING_DOMAINS, extra_zone=None,
                 smarthost_user="relay-user", smarthost_password="relay-pw",
                 mx_addresses=None, start=True):
        check_isolated()
        self.t0 = time.time()
        self.procs, self.receivers = [], []
        self.dns = self.mx = self.upstream = None
        self.dir = tempfile.mkdtemp(prefix="relayd-world-")
        _RUNNING.append(self)          # removed again by stop()
        os.chmod(self.dir, 0o755)     # Postfix and nobody traverse it
        self.algorithms = tuple(algorithms)
        self.receiver_kind = receiver
        self.want_smarthost = smarthost
        self.relay_ip = relay_ip
        self.sending_domains = tuple(sending_domains)
        self.dns_host, self.dns_port = "127.0.0.1", 53
        self.mx_port = 25
        self.mx_hosts = MX_HOSTS
        self.mx_addresses = tuple(mx_addresses or
                                  [ip for _, ip, _ in MX_HOSTS])
        self.smarthost_host, self.smarthost_ip = UPSTREAM_HOST, UPSTREAM_IP
        self.smarthost_port = UPSTREAM_PORT
        self.smarthost_user = smarthost_user
        self.smarthost_password = smarthost_password
        self.timings = {}

        kd = f"{self.dir}/keys"
        os.makedirs(kd)
        self.keys = []
        for dom in self.sending_domains:
            if "rsa" in self.algorithms:
                self.keys.append(DkimKey(kd, dom, "r2026", "rsa"))
            if "ed25519" in self.algorithms:
                self.keys.append(DkimKey(kd, dom, "e2026", "ed25519"))
        td = f"{self.dir}/tls"
        os.makedirs(td)
        self.ca_cert = make_ca(td, {
            "mx": [h for h, _, _ in MX_HOSTS],
            "upstream": [UPSTREAM_HOST],
            "sender-mx": [f"mx.{d}" for d in self.sending_domains]})
        self.mx_cert = (f"{td}/mx.crt", f"{td}/mx.key")
        self.upstream_cert = (f"{td}/upstream.crt", f"{td}/upstream.key")
        self.sender_mx_cert = (f"{td}/sender-mx.crt", f"{td}/sender-mx.key")
        for f in glob.glob(f"{td}/*.key"):
            shutil.chown(f, "root", "postfix")
        self.timings["keys"] = time.time() - self.t0

        self.zone = self.zone_records()
        if extra_zone:
            extra_zone(self.zone)
        if start:
            self.start()

    # --- DNS records -----------------------------------------------------
    def zone_records(self):
        """The test zone (see docs/dns.md)."""
        z = Zone()
        for k in self.keys:
            z.txt[k.name] = k.txt
        for dom in self.sending_domains:
            z.txt[f"_dmarc.{dom}"] = DMARC_RECORD
            z.mx.append((dom, f"mx.{dom}", 10))
            z.a.append((f"mx.{dom}", SENDER_MX_IP))
            b = f"bounces.{dom}"
            z.txt[b] = f"v=spf1 ip4:{self.relay_ip} -all"
            z.mx.append((b, f"relay.{dom}", 10))
            z.a.append((f"relay.{dom}", "127.0.0.1"))
        for host, ip, pref in MX_HOSTS:
            z.mx.append((RCPT_DOMAIN, host, pref))
            z.a.append((host, ip))
        z.txt[RCPT_DOMAIN] = "v=spf1 -all"
        z.mx.append(("null-mx.org", ".", 0))          # RFC 7505
        z.a.append(("no-mx.org", IMPLICIT_MX_IP))     # RFC 5321 5.1
        z.a.append((UPSTREAM_HOST, UPSTREAM_IP))
        # nx-domain.org has no record at all: NXDOMAIN.
        return z

    # --- lifecycle ---------------------------------------------------------
    def start(self):
        t = time.time()
        self.dns = Dnsmasq(f"{self.dir}", self.zone, self.dns_host,
                           self.dns_port)
        self.timings["dns"] = time.time() - t
        try:
            if self.receiver_kind == "postfix":
                t = time.time()
                self._start_mx()
                self.timings["mx"] = time.time() - t
            if self.want_smarthost:
                t = time.time()
                self._start_upstream()
                self.timings["smarthost"] = time.time() - t
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.time() - self.t0
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _start_mx(self):
        t0 = time.time()
        d = f"{self.dir}/mx"
        os.makedirs(d)
        os.chmod(d, 0o755)
        # Checkers.  OpenDKIM (built with libunbound on Debian 12) gets an
        # unbound configuration forwarding everything to the test server;
        # OpenDMARC and policyd-spf read the private resolv.conf.
        self.dkim_port = free_port()
        self.dmarc_port = free_port()
        with open(f"{d}/none.hosts", "w") as f:
            f.write("192.0.2.255\n")       # TEST-NET-1: never a client here
        with open(f"{d}/unbound.conf", "w") as f:
            f.write("server:\n  do-not-query-localhost: no\n"
                    "  module-config: \"iterator\"\n"
                    "forward-zone:\n  name: \".\"\n"
                    f"  forward-addr: {self.dns_host}@{self.dns_port}\n")
        with open(f"{d}/opendkim.conf", "w") as f:
            f.write(f"""Mode v
Socket inet:{self.dkim_port}@127.0.0.1
PidFile {d}/opendkim.pid
AuthservID {AUTHSERV_ID}
AlwaysAddARHeader yes
InternalHosts {d}/none.hosts
ExternalIgnoreList {d}/none.hosts
ResolverConfiguration {d}/unbound.conf
Syslog yes
LogWhy yes
On-BadSignature accept
On-DNSError accept
On-KeyNotFound accept
On-NoSignature accept
On-SignatureError accept
On-InternalError accept
On-Security accept
Canonicalization relaxed/relaxed
""")
        with open(f"{d}/opendmarc.conf", "w") as f:
            f.write(f"""Socket inet:{self.dmarc_port}@127.0.0.1
PidFile {d}/opendmarc.pid
AuthservID {AUTHSERV_ID}
TrustedAuthservIDs {AUTHSERV_ID}
IgnoreHosts {d}/none.hosts
IgnoreAuthenticatedClients false
RejectFailures false
SPFIgnoreResults false
SPFSelfValidate false
FailureReports false
HistoryFile {d}/opendmarc.history
PublicSuffixList /usr/share/publicsuffix/public_suffix_list.dat
Syslog false
""")
        with open(f"{d}/policyd-spf.conf", "w") as f:
            f.write(f"""debugLevel = 1
TestOnly = 1
HELO_reject = False
Mail_From_reject = False
PermError_reject = False
TempError_Defer = False
skip_addresses = 192.0.2.255/32
Header_Type = AR
Authserv_Id = {AUTHSERV_ID}
Hide_Receiver = No
Lookup_Time = 10
""")
        os.chmod(f"{d}/policyd-spf.conf", 0o644)
        self.timings["mx-config"] = time.time() - t0
        self.procs.append(start_daemon(
            ["opendkim", "-f", "-x", f"{d}/opendkim.conf"],
            f"{d}/opendkim.log", "127.0.0.1", self.dkim_port))
        self.procs.append(start_daemon(
            ["opendmarc", "-f", "-c", f"{d}/opendmarc.conf"],
            f"{d}/opendmarc.log", "127.0.0.1", self.dmarc_port))
        self.timings["milters"] = time.time() - t0
        self.maildir = f"{d}/mail/inbox"
        os.makedirs(f"{d}/mail")
        shutil.chown(f"{d}/mail", "nobody", "nogroup")
        addrs = list(self.mx_addresses)
        services = "".join(
            f"{ip}:{self.mx_port} inet n - n - - smtpd\n" for ip in addrs)
        services += ("policyd-spf unix - n n - 0 spawn user=nobody "
                     f"argv=/usr/bin/policyd-spf {d}/policyd-spf.conf\n")
        main = {
            "myhostname": AUTHSERV_ID,
            "mydomain": RCPT_DOMAIN,
            "mynetworks": "192.0.2.255/32",
            "smtpd_banner": "$myhostname ESMTP test world",
            "virtual_mailbox_domains": RCPT_DOMAIN,
            "virtual_mailbox_base": f"{d}/mail",
            "virtual_mailbox_maps": "static:inbox/",
            "virtual_uid_maps": "static:65534",
            "virtual_gid_maps": "static:65534",
            "virtual_minimum_uid": "1",
            "virtual_mailbox_limit": "0",
            "smtpd_relay_restrictions": "reject_unauth_destination",
            "smtpd_recipient_restrictions":
                "check_policy_service unix:private/policyd-spf",
            "policyd-spf_time_limit": "3600",
            "smtpd_milters": f"inet:127.0.0.1:{self.dkim_port}, "
                             f"inet:127.0.0.1:{self.dmarc_port}",
            "milter_default_action": "tempfail",
            "milter_protocol": "6",
            "smtpd_tls_security_level": "may",
            "smtpd_tls_cert_file": self.mx_cert[0],
            "smtpd_tls_key_file": self.mx_cert[1],
            "default_transport": "error:5.7.0 the test MX sends nothing out",
            "relay_transport": "error:5.7.0 the test MX sends nothing out",
            "notify_classes": "",
            "bounce_queue_lifetime": "0",
        }
        self.mx = Postfix(d, main, services,
                          [(ip, self.mx_port) for ip in addrs])
        self.mx.start()
        self._warm_up_mx()

    def _warm_up_mx(self):
        """One signed message through the MX before any test sends; it
        must get dkim=pass, else the world fails to start, with the logs.

        Why: OpenDKIM (Debian 12, built with libunbound) reads its
        ResolverConfiguration in whichever milter thread needs it first, and
        unbound's configuration parser is not reentrant.  Two milter
        connections at the same moment right after the start (Postfix's
        smtpd sessions of two port probes) made it print "syntax error",
        its lookups failing after that, or die with "fatal flex scanner
        internal error--end of buffer missed", every later milter
        connection refused and the MX answering 451 4.7.1 (seen in about
        one world start in thirty).  Postfix.start() therefore waits with
        wait_port(ready=smtp_quits), one whole session at a time; this
        message proves the verifier works before the tests rely on it."""
        import smtplib
        k = self.keys[0]
        msg = (f"From: <warm-up@{k.domain}>\r\nTo: <rcpt@{RCPT_DOMAIN}>\r\n"
               f"Subject: world warm-up\r\n"
               f"Message-ID: <warm-up.{time.time_ns()}@{k.domain}>\r\n\r\n"
               f"warm-up\r\n").encode()
        s = smtplib.SMTP(self.mx_addresses[0], self.mx_port,
                         local_hostname=f"relay.{k.domain}", timeout=30)
        try:
            s.sendmail(f"warm-up@bounces.{k.domain}", [f"rcpt@{RCPT_DOMAIN}"],
                       k.sign(msg) + msg)
        finally:
            s.quit()
        got = [d for d in self.deliveries(want=1, timeout=30)
               if d.header("Subject") == "world warm-up"]
        if not got or [r for r, *_ in got[0].dkim()] != ["pass"]:
            raise RuntimeError(f"world: the MX's warm-up message got "
                               f"{got[0].results if got else 'no delivery'}:"
                               f"\n{self.logs()}")
        self.clear_deliveries()

    def _start_upstream(self):
        d = f"{self.dir}/upstream"
        # Debian's Postfix reads $config_directory/sasl/smtpd.conf (seen
        # with strace); cyrus_sasl_config_path names the same place.
        os.makedirs(f"{d}/etc/sasl")
        os.chmod(d, 0o755)
        with open(f"{d}/etc/sasl/smtpd.conf", "w") as f:
            f.write(f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                    f"sasldb_path: {d}/sasldb2\nmech_list: PLAIN LOGIN\n")
        subprocess.run(["saslpasswd2", "-p", "-c", "-f", f"{d}/sasldb2",
                        "-u", "upstream.test", self.smarthost_user],
                       input=self.smarthost_password.encode(), check=True)
        shutil.chown(f"{d}/sasldb2", "root", "postfix")
        os.chmod(f"{d}/sasldb2", 0o640)
        services = (f"{UPSTREAM_IP}:{UPSTREAM_PORT} inet n - n - - smtpd\n")
        main = {
            "myhostname": UPSTREAM_HOST,
            "mynetworks": "192.0.2.255/32",
            "smtpd_banner": "$myhostname ESMTP test upstream",
            "smtp_bind_address": self.relay_ip,
            "smtpd_tls_security_level": "encrypt",
            "smtpd_tls_auth_only": "yes",
            "smtpd_tls_cert_file": self.upstream_cert[0],
            "smtpd_tls_key_file": self.upstream_cert[1],
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "cyrus",
            "smtpd_sasl_path": "smtpd",
            "cyrus_sasl_config_path": f"{d}/etc/sasl",
            "smtpd_sasl_local_domain": "upstream.test",
            "smtpd_sasl_security_options": "noanonymous",
            "smtpd_relay_restrictions": "permit_sasl_authenticated, reject",
            "smtp_tls_security_level": "may",
        }
        self.upstream = Postfix(d, main, services,
                                [(UPSTREAM_IP, UPSTREAM_PORT)])
        self.upstream.start()

    def stop(self):
        """Stop everything this world started, by PID; keep the directory
        when RELAYD_KEEP is set, else remove it.  Idempotent."""
        if self in _RUNNING:
            _RUNNING.remove(self)
        if getattr(self, "stopped", False):
            return
        self.stopped = True
        for r in self.receivers:
            try:
                r.stop()
            except Exception:
                pass
        self.receivers = []
        for pf in (self.upstream, self.mx):
            if pf:
                pf.stop()
        for p in self.procs:
            # OpenDKIM's libmilter takes about 5 s to honour SIGTERM; the
            # milters keep no state worth waiting for.
            stop_pid(p, 1)
        self.procs = []
        if self.dns:
            self.dns.stop()
        if os.environ.get("RELAYD_KEEP"):
            print("world kept in", self.dir, file=sys.stderr)
        else:
            # Postfix's children may still be finishing a file for a moment
            # after their master is gone.
            for _ in range(20):
                shutil.rmtree(self.dir, ignore_errors=True)
                if not os.path.exists(self.dir):
                    break
                time.sleep(0.1)

    # --- helpers for tests ------------------------------------------------
    def receiver(self, host=MX_HOSTS[0][1], port=None, **kw):
        """Start an aiosmtpd Receiver (see there) on host:port (default:
        mx1, port mx_port) and stop it with the world."""
        r = Receiver(host, port or self.mx_port, **kw)
        self.receivers.append(r)
        return r

    def deliveries(self, want=0, timeout=30):
        """Delivery objects for the messages in the MX's Maildir, oldest
        first, waiting up to timeout s for at least want of them."""
        end = time.time() + timeout
        while True:
            files = glob.glob(f"{self.maildir}/new/*") + \
                glob.glob(f"{self.maildir}/cur/*")
            if len(files) >= want or time.time() > end:
                break
            time.sleep(0.05)
        files.sort(key=lambda p: (os.stat(p).st_mtime_ns, p))
        return [Delivery(p) for p in files]

    def clear_deliveries(self):
        for p in glob.glob(f"{self.maildir}/new/*") + \
                glob.glob(f"{self.maildir}/cur/*"):
            os.unlink(p)

    def key(self, domain="own-domain.com", algorithm="rsa"):
        for k in self.keys:
            if k.domain == domain and k.algorithm == algorithm:
                return k
        raise KeyError((domain, algorithm))

    def dkimpy_verify(self, data):
        """Verify every DKIM-Signature of data (CRLF bytes) with dkimpy,
        keys from the world's DNS: [(d, s, a, ok)] in field order.  A
        second verifier next to OpenDKIM."""
        import dkim
        head = data.split(b"\r\n\r\n", 1)[0]
        n = len(re.findall(rb"(?im)^dkim-signature:", head))

        def dnsfunc(name, timeout=5):
            ans = self.dns.query(name.decode().rstrip("."), "TXT")
            return ans[0].encode() if isinstance(ans, list) and ans else b""

        out = []
        for i in range(n):
            v = dkim.DKIM(data)
            ok = v.verify(idx=i, dnsfunc=dnsfunc)
            tags = v.signature_fields or {}
            out.append((tags.get(b"d", b"").decode(),
                        tags.get(b"s", b"").decode(),
                        tags.get(b"a", b"").decode(), bool(ok)))
        return out

    def relayd_sections(self):
        """Sections for tests/integration/harness.Relayd: every sending
        domain with its DKIM keys and bounce domain, mode = mx at mx_port
        and the test's DNS server."""
        s = {"delivery": {"mode": "mx", "mx_port": str(self.mx_port)},
             "dns": {"servers": f"{self.dns_host}:{self.dns_port}"}}
        for dom in self.sending_domains:
            s[f"domain {dom}"] = {
                "dkim": [f"{k.selector}:{k.path}" for k in self.keys
                         if k.domain == dom],
                "bounce_domain": f"bounces.{dom}"}
        return s

    def smarthost_sections(self, password_file):
        """[delivery] and [smarthost] for relayd through the upstream."""
        with open(password_file, "w") as f:
            f.write(self.smarthost_password + "\n")
        os.chmod(password_file, 0o600)
        return {"delivery": {"mode": "smarthost"},
                "smarthost": {"host": UPSTREAM_HOST,
                              "port": str(UPSTREAM_PORT), "tls": "starttls",
                              "username": self.smarthost_user,
                              "password_file": password_file},
                "dns": {"servers": f"{self.dns_host}:{self.dns_port}"}}

    def logs(self):
        """Everything the receiving side logged, for failure messages."""
        out = []
        for pf in (self.mx, self.upstream):
            if pf:
                out.append(pf.maillog()[-4000:])
        for f in glob.glob(f"{self.dir}/mx/*.log"):
            out.append(open(f, errors="replace").read()[-2000:])
        return "\n".join(out)
