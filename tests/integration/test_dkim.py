"""Issue 4, "Proof": relayd's DKIM signatures checked by two independent
verifiers, python3-dkim (dkimpy) and OpenDKIM's opendkim-testmsg, both
reading the public keys from a real DNS server (dnsmasq) on 127.0.0.1:53.

The test runs in its own network and mount namespaces (world.isolate()):
/etc/resolv.conf there names only 127.0.0.1, so dkimpy (dnspython) and
opendkim-testmsg (libopendkim's resolver, which reads resolv.conf) both
ask the test's dnsmasq and nothing else.  A key whose record is not
published (nokey.org) proves the verifiers do look the keys up.

Messages go through the real relayd (capture mode) with smtplib; each
captured message is verified signature by signature (each one alone for
opendkim-testmsg, which reports the best of several), for RSA-only
(tenant-b.net), Ed25519-only (ed-only.org) and dual (own-domain.com)
signing, relaxed/relaxed and simple/simple.  The tags are checked (d=,
h= oversigning, no l=, t=, x= from signature_lifetime, 78 columns), and
tampering (a second From, Subject or To prepended; one body byte
changed) must make both verifiers fail.

Run as root (namespaces): /usr/bin/python3 test_dkim.py.
"""
import base64
import email.mime.application
import email.mime.multipart
import email.mime.text
import email.policy
import os
import re
import smtplib
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import world  # noqa: E402

RCPT = "r@rcpt-domain.org"
LIFETIME = 86400
OVERSIGNED = (["from", "sender", "reply-to", "subject", "date", "message-id",
               "to", "cc", "mime-version", "content-type",
               "content-transfer-encoding", "in-reply-to", "references"])
USER_OF = {"own-domain.com": "alice", "ed-only.org": "alice",
           "simple.org": "alice", "lifetime.org": "alice",
           "nokey.org": "alice", "tenant-b.net": "bob"}


def sig_fields(eml):
    """The DKIM-Signature fields of eml (raw, CRLF included), in order."""
    sigs = harness.split_added(eml)[0]
    return re.findall(rb"DKIM-Signature:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*",
                      sigs)


def tags(field):
    """{tag: value} of one DKIM-Signature field, white space removed."""
    v = field.split(b":", 1)[1]
    v = re.sub(rb"[ \t\r\n]", b"", v).decode()
    out = {}
    for t in v.split(";"):
        if t:
            k, _, val = t.partition("=")
            out[k] = val
    return out


SIG_RE = re.compile(rb"(?im)^DKIM-Signature:[^\r\n]*\r\n"
                    rb"(?:[ \t][^\r\n]*\r\n)*")


def only_signature(eml, i):
    """eml with only its i-th DKIM-Signature field (the others removed,
    wherever they are in the header section)."""
    head, sep, body = eml.partition(b"\r\n\r\n")
    head += b"\r\n"
    n = [0]

    def keep(m):
        n[0] += 1
        return m.group(0) if n[0] - 1 == i else b""
    return SIG_RE.sub(keep, head)[:-2] + sep + body


def nsigs(eml):
    head = eml.partition(b"\r\n\r\n")[0] + b"\r\n"
    return len(SIG_RE.findall(head))


def dkimpy_ok(eml, i):
    import dkim
    try:
        return bool(dkim.DKIM(eml).verify(idx=i))
    except Exception:       # a malformed or refused message: not verified
        return False


def opendkim_ok(eml):
    """(passed, stderr) of opendkim-testmsg verifying eml."""
    p = subprocess.run(["opendkim-testmsg"], input=eml, capture_output=True,
                       timeout=120)
    err = p.stderr.decode(errors="replace")
    return p.returncode == 0 and err == "", f"rc={p.returncode} {err}"


OPENDKIM_CONF = None       # set by setUpClass: verify mode, test DNS


def opendkim_t_ok(eml, d):
    """(passed, output) of "opendkim -t" (the milter's code in test mode,
    StrictHeaders off) verifying eml, which must hold one signature."""
    path = f"{d}/verify-{time.time_ns()}.eml"
    with open(path, "wb") as f:
        f.write(eml)
    try:
        p = subprocess.run(["opendkim", "-t", path, "-x", OPENDKIM_CONF],
                           capture_output=True, timeout=120)
    finally:
        os.unlink(path)
    out = p.stdout.decode(errors="replace") + p.stderr.decode(
        errors="replace")
    ok = (p.returncode == 0 and
          re.search(r"verification \(s=[^,]+, d=[^,]+, [^)]*\) succeeded",
                    out) is not None and
          "failed" not in out)
    return ok, out


def header_names(eml):
    """Lower-case names of the fields after relayd's signatures."""
    rest = eml[sum(len(f) for f in sig_fields(eml)):]
    head = rest.split(b"\r\n\r\n", 1)[0]
    return [m.group(1).decode().lower()
            for m in re.finditer(rb"(?m)^([^ \t\r\n:]+):", head)]


def crlf(msg):
    return msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def plain(subject, frm="Alice <alice@own-domain.com>", body=b"Hello.\r\n",
          extra=b""):
    return (f"From: {frm}\r\nTo: {RCPT}\r\nSubject: {subject}\r\n"
            f"Date: Sun, 22 Nov 2026 12:00:00 +0000\r\n"
            f"Message-ID: <{time.time_ns()}.{subject.replace(' ', '-')}"
            f"@client.example>\r\n").encode() + extra + b"\r\n" + body


class Dkim(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        world.check_isolated()
        # dkimpy calls a dnspython function deprecated in Debian 12.
        import warnings
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        cls.kd = tempfile.mkdtemp(prefix="relayd-dkim-keys-")
        mk = harness.make_dkim_key
        sections = {
            "limits": {"message_size": "30m"},
            "domain ed-only.org": {
                "dkim": ["%s:%s" % mk(cls.kd, "ed-only.org", "ed25519")]},
            "domain simple.org": {
                "canonicalization": "simple/simple",
                "dkim": ["%s:%s" % mk(cls.kd, "simple.org", "rsa"),
                         "%s:%s" % mk(cls.kd, "simple.org", "ed25519")]},
            "domain lifetime.org": {
                "signature_lifetime": "1d",
                "dkim": ["%s:%s" % mk(cls.kd, "lifetime.org", "rsa"),
                         "%s:%s" % mk(cls.kd, "lifetime.org", "ed25519")]},
            "domain nokey.org": {
                "dkim": ["%s:%s" % mk(cls.kd, "nokey.org", "rsa")]},
        }
        users = {"alice": ("alice-pw", "own-domain.com,ed-only.org,"
                           "simple.org,lifetime.org,nokey.org"),
                 "bob": ("bob-pw", "tenant-b.net")}
        cls.h = harness.Relayd(sections=sections, users=users)
        zone = world.Zone()
        for name, txt in harness.DKIM_TXT.items():
            if not name.endswith("nokey.org"):
                zone.txt[name] = txt
        cls.dd = tempfile.mkdtemp(prefix="relayd-dkim-dns-")
        cls.dns = None
        # OpenDKIM (-t) reads DNS through libunbound: forward everything to
        # the test's dnsmasq, as world.py does for the milter.
        global OPENDKIM_CONF
        OPENDKIM_CONF = f"{cls.dd}/opendkim.conf"
        with open(f"{cls.dd}/unbound.conf", "w") as f:
            f.write("server:\n  do-not-query-localhost: no\n"
                    "  module-config: \"iterator\"\n"
                    "forward-zone:\n  name: \".\"\n"
                    "  forward-addr: 127.0.0.1@53\n")
        with open(OPENDKIM_CONF, "w") as f:
            f.write(f"Mode v\nResolverConfiguration {cls.dd}/unbound.conf\n"
                    "Syslog no\nLogWhy yes\nStrictHeaders no\n"
                    "AlwaysAddARHeader yes\nOn-BadSignature accept\n"
                    "On-KeyNotFound accept\nOn-DNSError accept\n")
        try:
            cls.dns = world.Dnsmasq(cls.dd, zone)
            cls.h.start()
        except Exception:
            cls.tearDownClass()
            raise
        cls.sent = {}

    @classmethod
    def tearDownClass(cls):
        cls.h.cleanup()
        if cls.dns is not None:
            cls.dns.stop()
        import shutil
        shutil.rmtree(cls.dd, ignore_errors=True)
        shutil.rmtree(cls.kd, ignore_errors=True)

    # --- helpers ---------------------------------------------------------
    def submit(self, msg, domain="own-domain.com", rcpts=(RCPT,),
               eightbit=False, smtputf8=False):
        """Send msg through relayd; the captured message (bytes)."""
        user = USER_OF[domain]
        s = self.h.client(user=user)
        try:
            s.mail(f"{user}@{domain}",
                   (["BODY=8BITMIME"] if eightbit else []) +
                   (["SMTPUTF8"] if smtputf8 else []))
            for r in rcpts:
                self.assertEqual(s.rcpt(r)[0], 250)
            code, text = s.data(msg)
        finally:
            s.close()
        text = text.decode(errors="replace")
        self.assertEqual(code, 250, text)
        qid = harness.queued_id(text)
        self.assertIsNotNone(qid, text)
        path = f"{self.h.capture}/{qid}.eml"
        end = time.time() + 30
        while time.time() < end:
            if os.path.exists(path) and os.path.exists(path[:-4] + ".json"):
                with open(path, "rb") as f:
                    return f.read()
            time.sleep(0.05)
        self.fail(f"{qid} not captured; log:\n{self.h.tail()}")

    def verify_all(self, eml, domain, algs, lifetime=0, canon="relaxed",
                   strict_headers=True):
        """Every signature passes every verifier (dkimpy, opendkim-testmsg
        and opendkim -t), and its tags are right.  strict_headers False:
        the message has several To or Cc fields, which RFC 5322 3.6 does
        not allow and opendkim-testmsg refuses before any signature is
        looked at (its library runs with strict header checks); it must
        then say exactly that, and opendkim -t must pass."""
        fs = sig_fields(eml)
        self.assertEqual([tags(f)["a"] for f in fs], algs)
        self.assertEqual(len(re.findall(rb"(?im)^dkim-signature:",
                                        eml.split(b"\r\n\r\n", 1)[0])),
                         len(fs))
        names = header_names(eml)
        now = time.time()
        for i, f in enumerate(fs):
            t = tags(f)
            with self.subTest(signature=i, a=t["a"]):
                self.assertEqual(t["d"], domain)
                self.assertEqual(t["v"], "1")
                self.assertEqual(t["c"], f"{canon}/{canon}")
                self.assertNotIn("l", t)
                self.assertNotIn("i", t)
                self.assertLess(abs(int(t["t"]) - now), 300)
                if lifetime:
                    self.assertEqual(int(t["x"]), int(t["t"]) + lifetime)
                else:
                    self.assertNotIn("x", t)
                h = t["h"].lower().split(":")
                for bad in ("received", "return-path", "dkim-signature"):
                    self.assertNotIn(bad, h)
                for name in OVERSIGNED:
                    self.assertEqual(h.count(name), names.count(name) + 1,
                                     (name, t["h"]))
                for name in set(names):
                    if name.startswith("list-"):
                        self.assertEqual(h.count(name), names.count(name) + 1)
                for line in f.split(b"\r\n")[:-1]:
                    self.assertLessEqual(len(line), 78, line)
                self.assertTrue(dkimpy_ok(eml, i), f"dkimpy: {f!r}")
                ok, why = opendkim_ok(only_signature(eml, i))
                if strict_headers:
                    self.assertTrue(ok, f"opendkim-testmsg: {why}: {f!r}")
                else:
                    self.assertEqual(why, "rc=70 opendkim-testmsg: "
                                     "dkim_chunk(): Syntax error\n")
                ok, why = opendkim_t_ok(only_signature(eml, i), self.dd)
                self.assertTrue(ok, f"opendkim -t: {why}: {f!r}")
        ok, why = opendkim_ok(eml)
        self.assertEqual(ok, strict_headers, why)

    def verify_none(self, eml, what):
        self.assertGreater(nsigs(eml), 0)
        for i in range(nsigs(eml)):
            with self.subTest(what=what, signature=i):
                self.assertFalse(dkimpy_ok(eml, i), f"dkimpy passed {what}")
                ok, why = opendkim_ok(only_signature(eml, i))
                self.assertFalse(ok, f"opendkim-testmsg passed {what}")
                ok, why = opendkim_t_ok(only_signature(eml, i), self.dd)
                self.assertFalse(ok, f"opendkim -t passed {what}: {why}")
        ok, why = opendkim_ok(eml)
        self.assertFalse(ok, f"opendkim-testmsg passed {what}")

    def roundtrip(self, msg, eml):
        """The message after relayd's fields is the one submitted."""
        self.assertEqual(harness.as_submitted(eml), msg)

    # --- algorithms ------------------------------------------------------
    def test_dual(self):
        msg = plain("dual")
        eml = self.submit(msg)
        self.roundtrip(msg, eml)
        self.verify_all(eml, "own-domain.com", ["rsa-sha256",
                                                "ed25519-sha256"])

    def test_rsa_only(self):
        msg = plain("rsa only", frm="Bob <bob@tenant-b.net>")
        eml = self.submit(msg, domain="tenant-b.net")
        self.roundtrip(msg, eml)
        self.verify_all(eml, "tenant-b.net", ["rsa-sha256"])

    def test_ed25519_only(self):
        msg = plain("ed25519 only", frm="alice@ed-only.org")
        eml = self.submit(msg, domain="ed-only.org")
        self.roundtrip(msg, eml)
        self.verify_all(eml, "ed-only.org", ["ed25519-sha256"])

    def test_simple_simple(self):
        msg = plain("simple", frm="Alice  <alice@simple.org>",
                    body=b"Trailing  \r\n\twhite space\t \r\n\r\n\r\n",
                    extra=b"X-Spaces:   kept  \r\n")
        eml = self.submit(msg, domain="simple.org")
        self.roundtrip(msg, eml)
        self.verify_all(eml, "simple.org", ["rsa-sha256", "ed25519-sha256"],
                        canon="simple")
        # Simple header canonicalization: one more space breaks it.
        bad = eml.replace(b"X-Spaces:   kept", b"X-Spaces:    kept")
        bad = bad.replace(b"From: Alice  <", b"From: Alice   <")
        self.verify_none(bad, "simple header changed by white space")

    def test_signature_lifetime(self):
        msg = plain("lifetime", frm="alice@lifetime.org")
        eml = self.submit(msg, domain="lifetime.org")
        self.verify_all(eml, "lifetime.org", ["rsa-sha256",
                                              "ed25519-sha256"],
                        lifetime=LIFETIME)

    def test_unpublished_key_fails(self):
        # The verifiers look keys up in the test's DNS: no record, no pass.
        eml = self.submit(plain("no key", frm="alice@nokey.org"),
                          domain="nokey.org")
        self.assertEqual(tags(sig_fields(eml)[0])["d"], "nokey.org")
        self.verify_none(eml, "a signature whose key is not published")
        with open(f"{self.dd}/dnsmasq.log", errors="replace") as f:
            log = f.read()
        self.assertIn("query[TXT] r2026._domainkey.nokey.org", log)

    # --- messages --------------------------------------------------------
    def test_utf8_body(self):
        body = ("Grüße, 日本語, ünïcödé — ok.\r\n" * 20).encode()
        msg = plain("utf8", body=body, extra=b"MIME-Version: 1.0\r\n"
                    b"Content-Type: text/plain; charset=utf-8\r\n"
                    b"Content-Transfer-Encoding: 8bit\r\n")
        eml = self.submit(msg, eightbit=True)
        self.roundtrip(msg, eml)
        self.verify_all(eml, "own-domain.com", ["rsa-sha256",
                                                "ed25519-sha256"])

    def test_utf8_headers(self):
        # RFC 6532 header fields (SMTPUTF8): the signers hash the bytes.
        for dom, canon in (("own-domain.com", "relaxed"),
                           ("simple.org", "simple")):
            with self.subTest(canon=canon):
                msg = plain("Grüße 日本",
                            frm=f"Alïce Ünïcode <alice@{dom}>",
                            body="Grüße.\r\n".encode(),
                            extra="X-Note: naïve café\r\n".encode())
                eml = self.submit(msg, domain=dom, eightbit=True,
                                  smtputf8=True)
                self.roundtrip(msg, eml)
                self.verify_all(eml, dom, ["rsa-sha256", "ed25519-sha256"],
                                canon=canon)

    def test_leading_dots(self):
        body = b".\r\n..\r\n.hidden\r\n...three\r\nmiddle . dot\r\n."
        body += b"\r\n"
        msg = plain("dots", body=body)
        eml = self.submit(msg)        # smtplib dot-stuffs; relayd unstuffs
        self.roundtrip(msg, eml)
        self.verify_all(eml, "own-domain.com", ["rsa-sha256",
                                                "ed25519-sha256"])

    def test_trailing_white_space(self):
        body = b"spaces   \r\ntabs\t\t\r\nmixed \t \r\n \r\n\t\r\nend\r\n"
        msg = plain("trailing", body=body,
                    extra=b"X-Trailing: value   \r\n")
        eml = self.submit(msg)
        self.roundtrip(msg, eml)
        self.verify_all(eml, "own-domain.com", ["rsa-sha256",
                                                "ed25519-sha256"])

    def test_empty_body(self):
        msg = plain("empty", body=b"")
        eml = self.submit(msg)
        self.roundtrip(msg, eml)
        self.assertTrue(eml.endswith(b"\r\n\r\n"))
        self.verify_all(eml, "own-domain.com", ["rsa-sha256",
                                                "ed25519-sha256"])

    def test_simple_empty_body(self):
        msg = plain("simple empty", frm="alice@simple.org", body=b"")
        eml = self.submit(msg, domain="simple.org")
        self.verify_all(eml, "simple.org", ["rsa-sha256", "ed25519-sha256"],
                        canon="simple")

    def test_body_without_final_crlf(self):
        # SMTP cannot carry a message that does not end in CRLF: the CRLF
        # before the final dot ends the last line (RFC 5321 4.1.1.4), and
        # smtplib adds one.  relayd keeps that CRLF as part of the body.
        for dom, canon in (("own-domain.com", "relaxed"),
                           ("simple.org", "simple")):
            with self.subTest(canon=canon):
                msg = plain("no final crlf " + canon,
                            frm=f"alice@{dom}", body=b"line one\r\nlast")
                eml = self.submit(msg, domain=dom)
                self.roundtrip(msg + b"\r\n", eml)
                self.verify_all(eml, dom, ["rsa-sha256", "ed25519-sha256"],
                                canon=canon)

    def test_header_only(self):
        # No empty line at all: the whole message is the header section
        # (RFC 5322 3.5: the body is optional); the body is empty.
        msg = plain("header only", body=b"")[:-2]
        self.assertFalse(b"\r\n\r\n" in msg)
        eml = self.submit(msg)
        self.roundtrip(msg, eml)
        self.verify_all(eml, "own-domain.com", ["rsa-sha256",
                                                "ed25519-sha256"])

    def test_received_and_return_path_not_signed(self):
        extra = (b"Received: from a.example by b.example; "
                 b"Sun, 22 Nov 2026 11:00:00 +0000\r\n"
                 b"Return-Path: <x@own-domain.com>\r\n")
        msg = plain("trace fields", extra=extra)
        eml = self.submit(msg)
        self.roundtrip(msg, eml)
        self.verify_all(eml, "own-domain.com", ["rsa-sha256",
                                                "ed25519-sha256"])
        # Both may change in transit without breaking the signatures.
        moved = eml.replace(b"Return-Path: <x@own-domain.com>\r\n", b"")
        moved = moved.replace(b"Received: from a.example",
                              b"Received: from c.example")
        self.verify_all(moved, "own-domain.com", ["rsa-sha256",
                                                  "ed25519-sha256"])

    def test_998_octet_lines(self):
        line = (b"0123456789" * 100)[:998]
        body = line + b"\r\n" + (b"x" * 997 + b" ") + b"\r\n" + line + b"\r\n"
        msg = plain("998", body=body)
        eml = self.submit(msg)
        self.roundtrip(msg, eml)
        self.verify_all(eml, "own-domain.com", ["rsa-sha256",
                                                "ed25519-sha256"])

    def test_multipart_attachment(self):
        m = email.mime.multipart.MIMEMultipart()
        m["From"] = "Alice <alice@own-domain.com>"
        m["To"] = RCPT
        m["Subject"] = "attachment"
        m.attach(email.mime.text.MIMEText("See the attachment.\n"))
        att = email.mime.application.MIMEApplication(os.urandom(50000),
                                                     Name="data.bin")
        att["Content-Disposition"] = 'attachment; filename="data.bin"'
        m.attach(att)
        msg = m.as_bytes(policy=email.policy.SMTP)
        self.assertIn(b"Content-Transfer-Encoding: base64", msg)
        eml = self.submit(msg)
        rest = harness.as_submitted(eml)
        self.assertTrue(rest.endswith(msg), rest[:200])
        self.verify_all(eml, "own-domain.com", ["rsa-sha256",
                                                "ed25519-sha256"])

    def test_20_mib(self):
        line = base64.b64encode(os.urandom(57)) + b"\r\n"      # 78 octets
        body = line * (20 * 1024 * 1024 // len(line) + 1)
        self.assertGreater(len(body), 20 * 1024 * 1024)
        msg = plain("big", body=body)
        eml = self.submit(msg)
        self.assertEqual(len(harness.as_submitted(eml)), len(msg))
        self.verify_all(eml, "own-domain.com", ["rsa-sha256",
                                                "ed25519-sha256"])

    def test_folded_headers(self):
        extra = (b"X-Folded: one\r\n\ttwo\r\n   three\r\n"
                 b"References: <a@x.example>\r\n <b@x.example>\r\n"
                 b"\t<c@x.example>\r\n")
        msg = (b"From: Alice\r\n Example\r\n\t<alice@own-domain.com>\r\n"
               b"To: r@rcpt-domain.org,\r\n s@rcpt-domain.org\r\n"
               b"Subject: a subject that is folded\r\n over three\r\n"
               b"\tlines\r\nDate: Sun, 22 Nov 2026 12:00:00 +0000\r\n" +
               extra + b"\r\nBody.\r\n")
        for dom, canon in (("own-domain.com", "relaxed"),
                           ("simple.org", "simple")):
            with self.subTest(canon=canon):
                m = msg.replace(b"own-domain.com", dom.encode())
                eml = self.submit(m, domain=dom)
                rest = harness.as_submitted(eml)
                self.assertTrue(rest.startswith(b"Message-ID: <"),
                                rest[:80])
                self.assertRegex(rest.split(b"\r\n", 1)[0],
                                 rb"^Message-ID: <[^@>]+@" +
                                 re.escape(dom.encode()) + b">$")
                self.assertTrue(rest.endswith(m))
                self.verify_all(eml, dom, ["rsa-sha256", "ed25519-sha256"],
                                canon=canon)

    def test_many_recipients_in_to_and_cc(self):
        to = ",\r\n ".join(f"t{i}@rcpt-domain.org" for i in range(60))
        cc = ",\r\n\t".join(f"Name {i} <c{i}@x.example>" for i in range(60))
        extra = f"Cc: {cc}\r\nList-Id: <list.own-domain.com>\r\n".encode()
        msg = plain("many", extra=extra).replace(
            f"To: {RCPT}".encode(), f"To: {to}".encode())
        eml = self.submit(msg, rcpts=[RCPT, "t1@rcpt-domain.org",
                                      "c1@x.example"])
        self.roundtrip(msg, eml)
        self.verify_all(eml, "own-domain.com", ["rsa-sha256",
                                                "ed25519-sha256"])
        h = tags(sig_fields(eml)[0])["h"].lower().split(":")
        self.assertEqual((h.count("to"), h.count("cc"), h.count("list-id")),
                         (2, 2, 2))

    def test_many_to_and_cc_fields(self):
        extra = b"".join(b"To: t%d@rcpt-domain.org\r\n" % i for i in range(25))
        extra += b"".join(b"Cc: c%d@rcpt-domain.org, d%d@x.example\r\n"
                          % (i, i) for i in range(25))
        msg = plain("many fields", extra=extra)
        eml = self.submit(msg, rcpts=[RCPT, "t1@rcpt-domain.org",
                                      "c1@rcpt-domain.org"])
        self.roundtrip(msg, eml)
        self.verify_all(eml, "own-domain.com", ["rsa-sha256",
                                                "ed25519-sha256"],
                        strict_headers=False)
        h = tags(sig_fields(eml)[0])["h"].lower().split(":")
        self.assertEqual((h.count("to"), h.count("cc")), (27, 26))
        # opendkim-testmsg refuses the submitted message the same way
        # with no signature at all: its header check, not the signature.
        ok, why = opendkim_ok(harness.as_submitted(eml))
        self.assertEqual(why, "rc=70 opendkim-testmsg: dkim_chunk(): "
                         "Syntax error\n")
        ok, why = opendkim_ok(plain("one to"))
        self.assertEqual(why, "rc=70 opendkim-testmsg: dkim_chunk(): "
                         "No signature\n")

    def test_unusual_case(self):
        msg = (b"fROM: alice@own-domain.com\r\nTO: r@rcpt-domain.org\r\n"
               b"sUbJeCt: Case\r\nDATE: Sun, 22 Nov 2026 12:00:00 +0000\r\n"
               b"message-ID: <case.1@client.example>\r\n"
               b"mime-VERSION: 1.0\r\nCONTENT-type: text/plain\r\n"
               b"\r\nBody.\r\n")
        for dom, canon in (("own-domain.com", "relaxed"),
                           ("simple.org", "simple")):
            with self.subTest(canon=canon):
                m = msg.replace(b"own-domain.com", dom.encode())
                eml = self.submit(m, domain=dom)
                self.roundtrip(m, eml)
                self.verify_all(eml, dom, ["rsa-sha256", "ed25519-sha256"],
                                canon=canon)

    # --- tampering -------------------------------------------------------
    def test_tampering(self):
        msg = plain("tamper", body=b"The amount is 100 EUR.\r\n")
        for dom in ("own-domain.com", "tenant-b.net", "ed-only.org",
                    "simple.org"):
            m = msg.replace(b"alice@own-domain.com",
                            f"{USER_OF[dom]}@{dom}".encode())
            eml = self.submit(m, domain=dom)
            self.verify_all(eml, dom, [tags(f)["a"] for f in sig_fields(eml)],
                            canon="simple" if dom == "simple.org"
                            else "relaxed")
            for name in (b"From: ceo@" + dom.encode(),
                         b"Subject: urgent payment",
                         b"To: victim@rcpt-domain.org"):
                with self.subTest(dom=dom, prepended=name):
                    self.verify_none(name + b"\r\n" + eml,
                                     f"{name!r} prepended")
            with self.subTest(dom=dom, body="one byte"):
                self.assertEqual(eml.count(b"100 EUR"), 1)
                self.verify_none(eml.replace(b"100 EUR", b"900 EUR"),
                                 "one body byte changed")


if __name__ == "__main__":
    world.isolate()
    harness.main()
