"""The delivery test world (tests/integration/world.py) proves itself
without relayd: its DNS serves the zone and nothing else, nothing can
leave the namespace, and the real receiver (Postfix with OpenDKIM,
OpenDMARC and postfix-policyd-spf-python) gives pass verdicts to a message
that deserves them (signed here with dkimpy, RSA, Ed25519 and both) and
fail or none verdicts to one that does not.  Also the upstream Postfix
(STARTTLS + AUTH), the Python receiver with programmed replies, and one
check with relayd: its captured output, replayed to the receiver, passes.

Runs as root in its own network and mount namespaces (world.isolate()).
"""
import os
import smtplib
import socket
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402

BOUNCE = "alice+t1@bounces.own-domain.com"
RCPT = "rcpt@rcpt-domain.org"


def message(subject, frm="Alice <alice@own-domain.com>", body=b"Hello.\r\n"):
    return (f"From: {frm}\r\nTo: {RCPT}\r\nSubject: {subject}\r\n"
            f"Date: Sun, 22 Nov 2026 12:00:00 +0000\r\n"
            f"Message-ID: <{time.time_ns()}@own-domain.com>\r\n\r\n"
            ).encode() + body


def send(data, source="127.0.0.1", host="127.0.0.2", mail_from=BOUNCE,
         rcpt=RCPT, helo="relay.own-domain.com"):
    """One transaction to the MX from a given loopback source address."""
    s = smtplib.SMTP(host, 25, local_hostname=helo, timeout=30,
                     source_address=(source, 0))
    try:
        refused = s.sendmail(mail_from, [rcpt], data)
    finally:
        s.quit()
    return refused


class PostfixWorld(unittest.TestCase):
    """One world with the real receiver for all the checks below."""

    @classmethod
    def setUpClass(cls):
        t = time.time()
        cls.w = world.World(algorithms=("rsa", "ed25519"), smarthost=True)
        print(f"\nworld started in {time.time() - t:.2f} s: {cls.w.timings}",
              file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        cls.w.stop()

    def setUp(self):
        self.w.clear_deliveries()

    def one(self, subject):
        """The delivery whose Subject is subject (waiting for it)."""
        end = time.time() + 30
        while time.time() < end:
            for d in self.w.deliveries(want=1, timeout=1):
                if d.header("Subject") == subject:
                    return d
        self.fail(f"no delivery of {subject!r}; logs:\n{self.w.logs()}")

    # --- the world itself ------------------------------------------------
    def test_isolated(self):
        names = sorted(n for _, n in socket.if_nameindex())
        self.assertEqual(names, ["lo"])
        s = socket.socket()
        s.settimeout(2)
        # No route out: the connect fails at once, no packet leaves.
        with self.assertRaises(OSError):
            s.connect(("192.0.2.1", 25))
        s.close()
        with open("/etc/resolv.conf") as f:
            ns = [ln.split()[1] for ln in f if ln.startswith("nameserver")]
        self.assertEqual(ns, ["127.0.0.1"])

    def test_dns_records(self):
        q = self.w.dns.query
        rsa = q("r2026._domainkey.own-domain.com")
        self.assertEqual(rsa, [self.w.key("own-domain.com", "rsa").txt])
        self.assertGreater(len(rsa[0]), 255)    # split into strings, joined
        self.assertEqual(q("e2026._domainkey.own-domain.com"),
                         [self.w.key("own-domain.com", "ed25519").txt])
        self.assertEqual(q("_dmarc.own-domain.com"),
                         ["v=DMARC1; p=reject; adkim=r; aspf=r"])
        self.assertEqual(q("bounces.own-domain.com"),
                         ["v=spf1 ip4:127.0.0.1 -all"])
        self.assertEqual(q("bounces.own-domain.com", "MX"),
                         ["10 relay.own-domain.com."])
        self.assertEqual(q("relay.own-domain.com", "A"), ["127.0.0.1"])
        self.assertEqual(sorted(q("rcpt-domain.org", "MX")),
                         ["10 mx1.rcpt-domain.org.",
                          "20 mx2.rcpt-domain.org."])
        self.assertEqual(q("mx1.rcpt-domain.org", "A"), ["127.0.0.2"])
        self.assertEqual(q("mx2.rcpt-domain.org", "A"), ["127.0.0.3"])
        self.assertEqual(q("mx1.rcpt-domain.org", "AAAA"), [])   # NODATA
        self.assertEqual(q("null-mx.org", "MX"), ["0 ."])
        self.assertEqual(q("no-mx.org", "MX"), [])
        self.assertEqual(q("no-mx.org", "A"), ["127.0.0.5"])
        self.assertEqual(q("smtp.upstream.test", "A"), ["127.0.0.6"])
        self.assertEqual(q("nx-domain.org", "MX"), "NXDOMAIN")
        # Nothing is forwarded: a real internet name does not exist here.
        self.assertEqual(q("debian.org", "A"), "NXDOMAIN")
        # The system resolver (resolv.conf readers) sees the same server.
        self.assertEqual(socket.gethostbyname("mx2.rcpt-domain.org"),
                         "127.0.0.3")
        with self.assertRaises(socket.gaierror):
            socket.gethostbyname("debian.org")

    # --- pass verdicts -----------------------------------------------------
    def check_pass(self, d, algs):
        self.assertEqual(d.results.get("spf"), ["pass"], d)
        self.assertEqual(d.results.get("dmarc"), ["pass"], d)
        self.assertEqual(sorted(d.dkim()),
                         sorted(("pass", "own-domain.com", sel, a)
                                for sel, a in algs), d)
        self.assertEqual(d.mail_from, BOUNCE)
        self.assertEqual(d.rcpt, RCPT)

    def test_rsa_pass(self):
        msg = message("rsa")
        send(self.w.key(algorithm="rsa").sign(msg) + msg)
        self.check_pass(self.one("rsa"), [("r2026", "rsa-sha256")])

    def test_ed25519_pass(self):
        # OpenDKIM 2.11.0~beta2 (Debian 12) verifies ed25519-sha256.
        msg = message("ed25519")
        send(self.w.key(algorithm="ed25519").sign(msg) + msg)
        self.check_pass(self.one("ed25519"), [("e2026", "ed25519-sha256")])

    def test_dual_pass(self):
        msg = message("dual")
        msg = self.w.key(algorithm="rsa").sign(msg) + msg
        msg = self.w.key(algorithm="ed25519").sign(msg) + msg
        send(msg)
        d = self.one("dual")
        self.check_pass(d, [("r2026", "rsa-sha256"),
                            ("e2026", "ed25519-sha256")])
        # The second verifier agrees.
        self.assertEqual(sorted(self.w.dkimpy_verify(d.crlf())),
                         [("own-domain.com", "e2026", "ed25519-sha256", True),
                          ("own-domain.com", "r2026", "rsa-sha256", True)])

    def test_dmarc_pass_by_dkim_alone(self):
        # From 127.0.0.9, which the SPF record does not list.
        msg = message("dkim-only")
        send(self.w.key(algorithm="rsa").sign(msg) + msg, source="127.0.0.9")
        d = self.one("dkim-only")
        self.assertEqual(d.results.get("spf"), ["fail"], d)
        self.assertEqual([r[0] for r in d.dkim()], ["pass"], d)
        self.assertEqual(d.results.get("dmarc"), ["pass"], d)

    def test_dmarc_pass_by_spf_alone(self):
        send(message("spf-only"))
        d = self.one("spf-only")
        self.assertEqual(d.results.get("spf"), ["pass"], d)
        self.assertEqual(d.results.get("dkim"), ["none"], d)
        self.assertEqual(d.results.get("dmarc"), ["pass"], d)

    def test_message_arrives_unchanged(self):
        # No Date or Message-ID, yet both listed in h= (as oversigning
        # does): the receiver must neither add them nor touch anything.
        msg = (f"From: Alice <alice@own-domain.com>\r\nTo: {RCPT}\r\n"
               f"Subject: intact\r\n\r\nLine one.\r\n.dot\r\n").encode()
        sig = self.w.key(algorithm="rsa").sign(
            msg, headers=[b"from", b"to", b"subject", b"date",
                          b"message-id"])
        send(sig + msg)
        d = self.one("intact")
        self.assertTrue(d.crlf().endswith(sig + msg), d.raw)
        self.assertIsNone(d.header("Message-ID"))
        self.assertEqual([r[0] for r in d.dkim()], ["pass"], d)
        self.assertEqual(d.results.get("dmarc"), ["pass"], d)

    # --- fail verdicts -----------------------------------------------------
    def test_unsigned_from_disallowed_ip(self):
        send(message("unsigned"), source="127.0.0.9")
        d = self.one("unsigned")
        self.assertEqual(d.results.get("spf"), ["fail"], d)
        self.assertEqual(d.results.get("dkim"), ["none"], d)
        self.assertEqual(d.results.get("dmarc"), ["fail"], d)

    def test_wrong_key(self):
        other = world.DkimKey(self.w.dir, "own-domain.com", "r2026", "rsa")
        msg = message("wrong-key")
        send(other.sign(msg) + msg, source="127.0.0.9")
        d = self.one("wrong-key")
        self.assertEqual([r[0] for r in d.dkim()], ["fail"], d)
        self.assertEqual(d.results.get("dmarc"), ["fail"], d)

    def test_altered_body(self):
        msg = message("altered", body=b"Pay 10.\r\n")
        sig = self.w.key(algorithm="ed25519").sign(msg)
        send(sig + msg.replace(b"Pay 10.", b"Pay 99."), source="127.0.0.9")
        d = self.one("altered")
        self.assertEqual([r[0] for r in d.dkim()], ["fail"], d)
        self.assertEqual(d.results.get("dmarc"), ["fail"], d)

    def test_unaligned_signature(self):
        # A valid signature by tenant-b.net on mail From own-domain.com.
        msg = message("unaligned")
        send(self.w.key("tenant-b.net", "rsa").sign(msg) + msg,
             source="127.0.0.9")
        d = self.one("unaligned")
        self.assertEqual(d.dkim()[0][:2], ("pass", "tenant-b.net"), d)
        self.assertEqual(d.results.get("dmarc"), ["fail"], d)

    # --- upstream relay ------------------------------------------------------
    def upstream(self):
        s = smtplib.SMTP(self.w.smarthost_host, self.w.smarthost_port,
                         local_hostname="relay.own-domain.com", timeout=30)
        s.ehlo()
        return s

    def test_smarthost_requires_tls_and_auth(self):
        s = self.upstream()
        self.assertNotIn("auth", s.esmtp_features)
        code, text = s.docmd("AUTH", "PLAIN " + "AHJlbGF5LXVzZXIAcmVsYXktcHc=")
        self.assertEqual((code, text[:5]), (530, b"5.7.0"))
        code, text = s.docmd("MAIL FROM:<" + BOUNCE + ">")
        self.assertEqual((code, text[:5]), (530, b"5.7.0"))
        s.quit()
        s = self.upstream()
        ctx = ssl.create_default_context(cafile=self.w.ca_cert)
        s.starttls(context=ctx)     # verifies smtp.upstream.test's name
        s.ehlo()
        self.assertIn("PLAIN", s.esmtp_features["auth"])
        with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
            s.login(self.w.smarthost_user, "wrong")
        self.assertEqual(e.exception.smtp_code, 535)
        s.quit()

    def test_smarthost_relays_to_mx(self):
        s = self.upstream()
        s.starttls(context=ssl.create_default_context(cafile=self.w.ca_cert))
        s.ehlo()
        s.login(self.w.smarthost_user, self.w.smarthost_password)
        msg = message("via-upstream")
        s.sendmail(BOUNCE, [RCPT],
                   self.w.key(algorithm="ed25519").sign(msg) + msg)
        s.quit()
        d = self.one("via-upstream")
        self.check_pass(d, [("e2026", "ed25519-sha256")])
        self.assertIn("smtp.upstream.test", d.header("Received"))


class RelaydCaptureAtReceiver(unittest.TestCase):
    """relayd's own output, replayed: a message submitted with AUTH over
    STARTTLS and captured (dual-signed, VERP envelope sender) is sent by
    the test to the real receiver from 127.0.0.1 with relayd's envelope,
    and gets dkim=pass twice, spf=pass and dmarc=pass.  (Delivery by
    relayd itself is issue 5's; this checks signing and envelope now.)"""

    def test_relayd_signatures_pass(self):
        import harness
        with world.World(algorithms=("rsa", "ed25519")) as w:
            secs = w.relayd_sections()
            secs.pop("dns")
            secs["delivery"] = {"mode": "capture"}
            h = harness.Relayd(sections=secs)
            try:
                h.start()
                s = h.client("starttls")
                s.sendmail("alice@own-domain.com", [RCPT],
                           harness.message(subject="via-relayd"))
                s.quit()
                cap = h.captured(wait=10)
                self.assertEqual(len(cap), 1)
                meta, eml = cap[0]
                mail_from = meta["recipients"][0]["mail_from"]
                self.assertTrue(mail_from.endswith("@bounces.own-domain.com"))
                self.assertEqual(send(eml, mail_from=mail_from,
                                      helo="relay.test"), {})
                d = w.deliveries(want=1)[0]
                self.assertEqual(d.header("Subject"), "via-relayd")
                self.assertEqual(sorted(d.dkim()), [
                    ("pass", "own-domain.com", "e2026", "ed25519-sha256"),
                    ("pass", "own-domain.com", "r2026", "rsa-sha256")], d)
                self.assertEqual(d.results.get("spf"), ["pass"], d)
                self.assertEqual(d.results.get("dmarc"), ["pass"], d)
            finally:
                h.cleanup()


class FirstMxDownWorld(unittest.TestCase):
    """mx_addresses=("127.0.0.3",): mx1 refuses connections; the upstream
    relay, looking up rcpt-domain.org's MX, delivers to mx2."""

    def test_upstream_falls_back_to_mx2(self):
        with world.World(algorithms=("ed25519",), smarthost=True,
                         mx_addresses=("127.0.0.3",)) as w:
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.2", 25), 2)
            s = smtplib.SMTP(w.smarthost_host, w.smarthost_port, timeout=30)
            s.starttls(context=ssl.create_default_context(cafile=w.ca_cert))
            s.login(w.smarthost_user, w.smarthost_password)
            msg = message("mx2")
            s.sendmail(BOUNCE, [RCPT], w.key(algorithm="ed25519").sign(msg)
                       + msg)
            s.quit()
            ds = w.deliveries(want=1)
            self.assertEqual(len(ds), 1, w.logs())
            self.assertEqual(ds[0].results.get("dmarc"), ["pass"], ds[0])
            log = w.upstream.maillog()
            self.assertIn("connect to mx1.rcpt-domain.org[127.0.0.2]:25: "
                          "Connection refused", log)
            self.assertIn("relay=mx2.rcpt-domain.org[127.0.0.3]:25", log)


class PythonReceiverWorld(unittest.TestCase):
    """receiver="python": programmable MX replies for retry and DSN tests."""

    @classmethod
    def setUpClass(cls):
        cls.w = world.World(algorithms=("rsa",), receiver="python")

    @classmethod
    def tearDownClass(cls):
        cls.w.stop()

    def test_programmed_replies(self):
        calls = []

        def reply(t):
            calls.append(t)
            return "451 4.3.0 try later" if len(calls) == 1 else None

        r = self.w.receiver(reply=reply,
                            rcpt_reply=lambda a: "550 5.1.1 no such user"
                            if a.startswith("nobody@") else None,
                            tls=self.w.mx_cert)
        msg = message("python")
        with self.assertRaises(smtplib.SMTPDataError) as e:
            send(msg)
        self.assertEqual(e.exception.smtp_code, 451)
        self.assertEqual(send(msg), {})
        with self.assertRaises(smtplib.SMTPRecipientsRefused):
            send(msg, rcpt="nobody@rcpt-domain.org")
        got = r.wait(2)
        self.assertEqual(len(got), 2)
        self.assertEqual(got[1]["mail_from"], BOUNCE)
        self.assertEqual(got[1]["rcpt"], [RCPT])
        self.assertEqual(got[1]["data"], msg)
        self.assertEqual(got[1]["peer"], "127.0.0.1")
        self.assertFalse(got[1]["tls"])
        # STARTTLS is offered with a certificate for the MX names (the
        # name resolves through the private resolv.conf).
        s = smtplib.SMTP("mx1.rcpt-domain.org", 25, timeout=30)
        s.starttls(context=ssl.create_default_context(cafile=self.w.ca_cert))
        s.sendmail(BOUNCE, [RCPT], msg)
        s.quit()
        self.assertTrue(r.wait(3)[2]["tls"])
        # mx2 has no receiver: connections are refused.
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.3", 25), 2)


if __name__ == "__main__":
    world.isolate()
    unittest.main(verbosity=2)
