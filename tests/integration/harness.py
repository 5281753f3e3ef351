"""Shared pieces of the integration tests: a real relayd on free loopback
ports with its own temporary config, spool, certificate and users file, and
small helpers to talk to it.  Run with Debian's /usr/bin/python3.

    h = Relayd(limits={"recipients": "3"})   # extra keys per section
    h.start()
    s = h.client("starttls")                 # smtplib, logged in as alice
    ...
    h.stop()  /  h.cleanup()

Environment: RELAYD, RELAYCTL (binaries; meson sets them), RELAYD_SRC.
"""
import base64
import crypt
import glob
import json
import re
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import weakref

RELAYD = os.environ.get("RELAYD", "build/relayd")
RELAYCTL = os.environ.get("RELAYCTL", "build/relayctl")
SRC = os.environ.get("RELAYD_SRC", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


_GIVEN = set()


def free_port(host="127.0.0.1"):
    """A port free now on host that this process has not handed out
    before: the kernel may give the same ephemeral port to two binds in a
    row once the first socket is closed, and two listeners of one relayd
    then collide (seen in CI: "already used by [listen submissions]")."""
    while True:
        s = socket.socket()
        s.bind((host, 0))
        p = s.getsockname()[1]
        s.close()
        if (host, p) not in _GIVEN:
            _GIVEN.add((host, p))
            return p


def wait_port(host, port, timeout=15, proc=None, ready=None):
    """Wait up to timeout s until host:port accepts a connection (and,
    with ready, until ready(sock, deadline) says True of one); False when
    proc exits first or time runs out."""
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            s = socket.create_connection((host, port), 0.5)
        except OSError:
            time.sleep(0.02)
            continue
        try:
            # A connect to a port nothing listens on can pick that same
            # port as its source and connect to itself (TCP simultaneous
            # open): that is not the daemon listening.
            if s.getsockname() != s.getpeername() and (
                    ready is None or ready(s, end)):
                return True
        except OSError:
            pass
        finally:
            s.close()
        time.sleep(0.02)
    return False


def sh(cmd):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=True,
                          capture_output=True, text=True).stdout


_CERT_CACHE = {}
_KEY_CACHE = {}
# DKIM TXT records of the keys made by make_dkim_key(), by DNS name.
DKIM_TXT = {}


def make_dkim_key(d, domain, alg="rsa", selector=None):
    """A DKIM private key for domain in d (made once per process and
    domain); returns (selector, path).  Its TXT record goes into DKIM_TXT
    under SELECTOR._domainkey.DOMAIN."""
    selector = selector or {"rsa": "r2026", "ed25519": "e2026"}[alg]
    k = (domain, alg, selector)
    if k not in _KEY_CACHE:
        kd = tempfile.mkdtemp(prefix="relayd-key-")
        path = f"{kd}/key.pem"
        if alg == "rsa":
            sh(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                "rsa_keygen_bits:2048", "-out", path])
        else:
            sh(["openssl", "genpkey", "-algorithm", "ED25519", "-out", path])
        der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout",
                              "-outform", "DER"], check=True,
                             capture_output=True).stdout
        if alg == "rsa":
            txt = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
        else:
            txt = "v=DKIM1; k=ed25519; p=" + base64.b64encode(der[-32:]).decode()
        _KEY_CACHE[k] = (path, txt)
    path, txt = _KEY_CACHE[k]
    DKIM_TXT[f"{selector}._domainkey.{domain}"] = txt
    out = f"{d}/{domain}.{selector}.pem"
    shutil.copy(path, out)
    os.chmod(out, 0o600)
    return selector, out


def make_cert(d, cn="relay.test"):
    """A self-signed certificate and key in d (made once per process)."""
    if cn not in _CERT_CACHE:
        cd = tempfile.mkdtemp(prefix="relayd-cert-")
        sh(f"openssl req -x509 -newkey rsa:2048 -nodes -keyout {cd}/tls.key "
           f"-out {cd}/tls.crt -subj /CN={cn} -days 2 2>/dev/null")
        _CERT_CACHE[cn] = cd
    for f in ("tls.key", "tls.crt"):
        shutil.copy(f"{_CERT_CACHE[cn]}/{f}", f"{d}/{f}")
    os.chmod(f"{d}/tls.key", 0o600)


def hash_pw(pw):
    return crypt.crypt(pw, crypt.mksalt(crypt.METHOD_SHA512, rounds=5000))


DEFAULT_USERS = {"alice": ("alice-pw", "own-domain.com"),
                 "bob": ("bob-pw", "tenant-b.net")}


class Relayd:
    """relayd with a fresh config, users and spool in a temporary dir.

    sections: {"limits": {"recipients": "3"}, ...} adds or overrides keys.
    """

    def __init__(self, sections=None, users=None, mode="capture", raw_extra=""):
        self.dir = tempfile.mkdtemp(prefix="relayd-it-")
        d = self.dir
        self.host = "127.0.0.1"
        self.port_starttls = free_port()
        self.port_tls = free_port()
        self.port_plain = free_port()
        make_cert(d)
        self.users = users or dict(DEFAULT_USERS)
        with open(f"{d}/users", "w") as f:
            for name, (pw, grants) in self.users.items():
                f.write(f"{name}:{hash_pw(pw)}:{grants}\n")
        with open(f"{d}/secret", "wb") as f:
            f.write(os.urandom(32))
        os.chmod(f"{d}/secret", 0o600)
        self.capture = f"{d}/captured"
        self.spool = f"{d}/spool"
        base = {
            "relayd": {"hostname": "relay.test", "spool": self.spool,
                       "secret_file": f"{d}/secret",
                       "control_socket": f"{d}/control.sock"},
            "listen submission": {"address": f"127.0.0.1:{self.port_starttls}",
                                  "tls": "starttls", "role": "submission"},
            "listen submissions": {"address": f"127.0.0.1:{self.port_tls}",
                                   "tls": "implicit", "role": "submission"},
            "listen plain": {"address": f"127.0.0.1:{self.port_plain}",
                             "tls": "none", "role": "submission",
                             "insecure_auth": "yes"},
            "tls": {"certificate": f"{d}/tls.crt", "key": f"{d}/tls.key"},
            "users": {"file": f"{d}/users"},
            "domain own-domain.com": {
                "bounce_domain": "bounces.own-domain.com",
                "dkim": ["%s:%s" % make_dkim_key(d, "own-domain.com", "rsa"),
                         "%s:%s" % make_dkim_key(d, "own-domain.com", "ed25519")]},
            "domain tenant-b.net": {
                "bounce_domain": "bounces.tenant-b.net",
                "dkim": ["%s:%s" % make_dkim_key(d, "tenant-b.net", "rsa")]},
            "delivery": {"mode": mode, "capture_dir": self.capture},
            "queue": {"retry_min": "1s", "retry_max": "5s", "max_age": "1h"},
        }
        for sec, kv in (sections or {}).items():
            base.setdefault(sec, {})
            for k, v in kv.items():
                if v is None:
                    base[sec].pop(k, None)
                else:
                    base[sec][k] = v
        self.conf = f"{d}/relayd.conf"
        with open(self.conf, "w") as f:
            for sec, kv in base.items():
                f.write(f"[{sec}]\n")
                for k, v in kv.items():
                    for one in (v if isinstance(v, list) else [v]):
                        f.write(f"{k} = {one}\n")
                f.write("\n")
            f.write(raw_extra)
        self.proc = None
        self.log = f"{d}/relayd.log"

    # --- process -------------------------------------------------------
    def start(self, timeout=20, wait_port_of="plain"):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([RELAYD, "-c", self.conf],
                                     stdout=self.logf, stderr=self.logf,
                                     start_new_session=True)
        port = {"plain": self.port_plain, "starttls": self.port_starttls,
                "implicit": self.port_tls}[wait_port_of]
        if not wait_port(self.host, port, timeout, self.proc):
            raise RuntimeError("relayd did not start; log tail:\n" + self.tail())
        return self

    def tail(self, n=30):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def logtext(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()
        if getattr(self, "logf", None):
            self.logf.close()
            self.logf = None

    def cleanup(self):
        self.stop()
        if os.environ.get("RELAYD_KEEP"):
            print("kept", self.dir, file=sys.stderr)
            return
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- clients -------------------------------------------------------
    @staticmethod
    def ctx():
        c = ssl.create_default_context()
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE
        return c

    def client(self, kind="plain", user="alice", login=True, timeout=20):
        if kind == "implicit":
            s = smtplib.SMTP_SSL(self.host, self.port_tls, context=self.ctx(),
                                 timeout=timeout)
            s.ehlo("client.test")
        elif kind == "starttls":
            s = smtplib.SMTP(self.host, self.port_starttls, timeout=timeout)
            s.ehlo("client.test")
            s.starttls(context=self.ctx())
            s.ehlo("client.test")
        else:
            s = smtplib.SMTP(self.host, self.port_plain, timeout=timeout)
            s.ehlo("client.test")
        if login and user:
            s.login(user, self.users[user][0])
        return s

    def raw(self, kind="plain", timeout=10, source=None, rcvbuf=None):
        """A raw socket after the banner was read; returns (sock, banner).
        kind: plain, starttls or implicit (an ssl socket); source: a
        local address such as 127.0.0.2 to connect from; rcvbuf: the
        socket's SO_RCVBUF, set before connecting (a small one makes
        relayd's writes back up)."""
        port = {"plain": self.port_plain, "starttls": self.port_starttls,
                "implicit": self.port_tls}[kind]
        src = (source, 0) if source else None
        if rcvbuf is None:
            sock = socket.create_connection((self.host, port), timeout,
                                            source_address=src)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            if src:
                sock.bind(src)
            sock.connect((self.host, port))
        if kind == "implicit":
            sock = self.ctx().wrap_socket(sock)
        return sock, read_reply(sock)

    def session(self, kind="plain", user="alice", source=None, timeout=10,
                rcvbuf=None):
        """A raw socket after banner, EHLO and (if user) AUTH PLAIN."""
        sock, banner = self.raw(kind, timeout, source, rcvbuf)
        if banner[0] != 220:
            raise AssertionError(f"banner {banner}")
        code, text = send_cmd(sock, "EHLO client.test")
        if code != 250:
            raise AssertionError(f"EHLO {code} {text}")
        if user:
            code, text = send_cmd(sock, "AUTH PLAIN " + plain_b64(user, self.users[user][0]))
            if code != 235:
                raise AssertionError(f"AUTH {code} {text}")
        return sock

    @property
    def pid(self):
        return self.proc.pid

    def rss_kb(self):
        return vmrss_kb(self.proc.pid)

    def captured(self, wait=5, want=1):
        """List of (json, eml bytes) in capture_dir, waiting up to wait s
        for at least want of them."""
        end = time.time() + wait
        while True:
            out = []
            for j in sorted(glob.glob(f"{self.capture}/*.json")):
                eml = j[:-5] + ".eml"
                if os.path.exists(eml):
                    try:
                        with open(j) as fj, open(eml, "rb") as fe:
                            out.append((json.load(fj), fe.read()))
                    except (ValueError, OSError):
                        pass
            if len(out) >= want or time.time() > end:
                return out
            time.sleep(0.05)

    def spool_files(self):
        return sorted(os.listdir(f"{self.spool}/queue")) if os.path.isdir(f"{self.spool}/queue") else []


# Bytes read past the end of a reply, per socket (socket objects have
# __slots__, so they cannot carry the buffer themselves).
_REST = weakref.WeakKeyDictionary()


def read_reply(sock, timeout=10):
    """Read one complete (possibly multiline) SMTP reply; return
    (code, text) where text joins the lines with \\n.  (0, '') on EOF."""
    sock.settimeout(timeout)
    data = _REST.pop(sock, b"")
    while True:
        lines = data.split(b"\r\n")
        for i, ln in enumerate(lines[:-1]):
            if len(ln) >= 4 and ln[3:4] == b" ":
                code = int(ln[:3])
                text = b"\n".join(l[4:] for l in lines[:i + 1]).decode(errors="replace")
                # keep the rest for the next read
                rest = b"\r\n".join(lines[i + 1:])
                if rest:
                    _REST[sock] = rest
                return code, text
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            return 0, data.decode(errors="replace")
        data += chunk


def pending(sock):
    """Bytes already read from sock past the last reply returned."""
    return _REST.get(sock, b"")


def send_cmd(sock, line):
    if isinstance(line, str):
        line = line.encode()
    sock.sendall(line + b"\r\n")
    return read_reply(sock)


def is_closed(sock, timeout=5):
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def plain_b64(user, pw, authz=""):
    return base64.b64encode(f"{authz}\0{user}\0{pw}".encode()).decode()


def message(frm="Alice <alice@own-domain.com>", to="rcpt@rcpt-domain.org",
            subject="hello", body=b"Hello.\r\n", extra=b""):
    hdr = (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n"
           f"Date: Sun, 22 Nov 2026 12:00:00 +0000\r\n"
           f"Message-ID: <{time.time_ns()}@own-domain.com>\r\n").encode()
    return hdr + extra + b"\r\n" + body


def vmrss_kb(pid):
    """Resident set size of pid in KiB, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def transaction(sock, data, frm="alice@own-domain.com",
                rcpts=("rcpt@rcpt-domain.org",), end=None):
    """MAIL, RCPT..., DATA, then data (bytes, sent as is: the caller
    dot-stuffs) and end (default: ".\\r\\n" when data ends with CRLF,
    else "\\r\\n.\\r\\n"); returns the reply to the end of data.  Raises
    AssertionError when the envelope is refused."""
    if end is None:
        end = b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"
    for cmd, want in [(f"MAIL FROM:<{frm}>", 250)] + \
            [(f"RCPT TO:<{r}>", 250) for r in rcpts] + [("DATA", 354)]:
        code, text = send_cmd(sock, cmd)
        if code != want:
            raise AssertionError(f"{cmd}: {code} {text}")
    sock.sendall(data + end)
    return read_reply(sock, 30)


def queued_id(reply_text):
    """The ID of a '2.0.0 Ok: queued as ID' reply text, or None."""
    import re
    m = re.fullmatch(r"2\.0\.0 Ok: queued as ([0-9A-Za-z]+)", reply_text)
    return m.group(1) if m else None


# What relayd puts before a submitted message: its DKIM-Signature fields,
# then its one Received field (submit.h).
_ADDED_RE = re.compile(
    rb"\A((?:DKIM-Signature:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)+)"
    rb"(Received: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)")
# A VERP envelope sender on the default bounce domain (common/verp.h).
VERP_RE = r"b\.[a-z2-7]{36}@bounces\.own-domain\.com"


def split_added(eml):
    """(DKIM-Signature fields, Received field, rest) of a captured message;
    AssertionError when relayd's prefix is not there."""
    m = _ADDED_RE.match(eml)
    if not m:
        raise AssertionError("no DKIM-Signature + Received prefix: %r" % eml[:120])
    return m.group(1), m.group(2), eml[m.end():]


def as_submitted(eml):
    """A captured message without the fields relayd put before it."""
    return split_added(eml)[2]


def verp_key(secret_path):
    import hashlib
    return hashlib.sha256(b"relayd verp key 1\0" + open(secret_path, "rb").read()).digest()


def verp_decode(key, local):
    """(queue ID, recipient index) of a VERP local part b.TOKEN, or None
    when it is malformed or its MAC does not verify (common/verp.c)."""
    import hmac
    import hashlib
    import struct
    if not local.lower().startswith("b.") or len(local) != 38:
        return None
    try:
        raw = base64.b32decode(local[2:].upper() + "====")
    except ValueError:
        return None
    if len(raw) != 22:
        return None
    body, mac = raw[:12], raw[12:]
    want = hmac.new(key, b"relayd-verp-1" + body, hashlib.sha256).digest()[:10]
    if not hmac.compare_digest(mac, want):
        return None
    return body[:8].hex(), struct.unpack(">I", body[8:])[0]


def main():
    unittest.main(verbosity=2)
