"""relayd delivers (issue 5): mode = mx through the test world's DNS to a
real Postfix MX that checks DKIM, SPF and DMARC with software of its own,
mode = smarthost through a real upstream Postfix (STARTTLS + AUTH), and
against a programmable Python MX: 4xx then retry, 5xx and DNS failures
returned as RFC 3464 reports to the original sender, the first MX down,
TLS required and not offered, and kill -9 in the middle of deliveries.

Runs as root in its own network and mount namespaces (world.isolate()).
"""
import email
import email.policy
import glob
import os
import re
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import world  # noqa: E402

RCPT = "rcpt@rcpt-domain.org"
SENDER = "alice@own-domain.com"


def submit(h, subject, rcpts=(RCPT,), body=b"Hello.\r\n"):
    """Submit with AUTH over STARTTLS (smtplib); returns (queue ID, the
    message bytes as submitted)."""
    msg = harness.message(subject=subject, to=", ".join(rcpts), body=body)
    s = h.client("starttls")
    try:
        code, _ = s.mail(SENDER)
        assert code == 250, code
        for r in rcpts:
            code, text = s.rcpt(r)
            assert code == 250, (code, text)
        code, text = s.data(msg)
        assert code == 250, (code, text)
    finally:
        s.quit()
    qid = harness.queued_id(text.decode())
    assert qid, text
    return qid, msg


def relayed_part(data):
    """From relayd's first DKIM-Signature on: what relayd sent, without
    the fields the receiver put above it."""
    m = re.search(rb"(?:\A|\r\n)(DKIM-Signature:)", data)
    assert m, data[:300]
    return data[m.start(1):]


def wait_for(cond, timeout=30, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return cond()


def dsn_parts(data):
    """(message, [delivery-status field blocks], headers part text) of an
    RFC 3464 report."""
    m = email.message_from_bytes(data, policy=email.policy.compat32)
    assert m.get_content_type() == "multipart/report", m.get_content_type()
    assert m.get_param("report-type") == "delivery-status"
    parts = m.get_payload()
    status = [p for p in parts
              if p.get_content_type() == "message/delivery-status"]
    hdrs = [p for p in parts if p.get_content_type() == "text/rfc822-headers"]
    assert len(status) == 1 and len(hdrs) == 1, [p.get_content_type()
                                                 for p in parts]
    raw = status[0].get_payload()
    if isinstance(raw, list):       # email parses it into blocks
        blocks = [dict((k.lower(), str(v)) for k, v in b.items())
                  for b in raw]
    else:
        blocks = []
        for blk in re.split(r"\r?\n\r?\n", raw.strip()):
            d = {}
            for ln in blk.splitlines():
                k, _, v = ln.partition(":")
                d[k.strip().lower()] = v.strip()
            blocks.append(d)
    return m, blocks, hdrs[0].get_payload()


class RawServer:
    """A bare SMTP server on host:port that records every line it gets and
    says 250 to everything (354 to DATA).  ehlo: the EHLO keywords it
    offers (never STARTTLS here)."""

    def __init__(self, host, port, ehlo=("PIPELINING", "8BITMIME",
                                         "AUTH PLAIN LOGIN")):
        self.lines = []
        self.ehlo = ehlo
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.serve, args=(c,),
                             daemon=True).start()

    def serve(self, c):
        c.settimeout(10)
        f = c.makefile("rb")
        try:
            c.sendall(b"220 raw.test ESMTP\r\n")
            data = False
            for ln in f:
                self.lines.append(ln)
                if data:
                    if ln == b".\r\n":
                        data = False
                        c.sendall(b"250 2.0.0 ok\r\n")
                    continue
                cmd = ln[:4].upper()
                if cmd == b"EHLO":
                    ext = [b"raw.test"] + [e.encode() for e in self.ehlo]
                    c.sendall(b"".join(b"250-" + e + b"\r\n"
                                       for e in ext[:-1]) +
                              b"250 " + ext[-1] + b"\r\n")
                elif cmd == b"DATA":
                    data = True
                    c.sendall(b"354 go\r\n")
                elif cmd == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    break
                else:
                    c.sendall(b"250 ok\r\n")
        except OSError:
            pass
        finally:
            c.close()

    def commands(self):
        return [ln.split(b" ")[0].split(b":")[0].rstrip(b"\r\n").upper()
                for ln in self.lines]

    def stop(self):
        self.stopping = True
        self.t.join(5)
        self.sock.close()


class PostfixMx(unittest.TestCase):
    """The real receiver: dkim, spf and dmarc pass for what relayd sends,
    directly (mode = mx) and through the upstream (mode = smarthost)."""

    @classmethod
    def setUpClass(cls):
        cls.w = world.World(algorithms=("rsa", "ed25519"), smarthost=True)

    @classmethod
    def tearDownClass(cls):
        cls.w.stop()

    def setUp(self):
        self.w.clear_deliveries()

    def relayd(self, algs, extra=None):
        secs = self.w.relayd_sections()
        secs["domain own-domain.com"]["dkim"] = [
            f"{k.selector}:{k.path}" for k in self.w.keys
            if k.domain == "own-domain.com" and k.algorithm in algs]
        for sec, kv in (extra or {}).items():
            secs.setdefault(sec, {}).update(kv)
        h = harness.Relayd(sections=secs)
        self.addCleanup(h.cleanup)
        h.start()
        return h

    def one(self, subject, h):
        end = time.time() + 30
        while time.time() < end:
            for d in self.w.deliveries(want=1, timeout=1):
                if d.header("Subject") == subject:
                    return d
        self.fail(f"no delivery of {subject!r}; relayd:\n{h.tail(40)}\n"
                  f"receiver:\n{self.w.logs()}")

    def check(self, h, subject, algs, sels):
        qid, msg = submit(h, subject)
        d = self.one(subject, h)
        self.assertEqual(d.results.get("spf"), ["pass"], d)
        self.assertEqual(d.results.get("dmarc"), ["pass"], d)
        self.assertEqual(sorted(d.dkim()), sorted(
            ("pass", "own-domain.com", s, a) for s, a in sels), d)
        self.assertEqual(d.rcpt, RCPT)
        # The bytes relayd signed and stored, unchanged: its prefix, then
        # exactly what was submitted.
        sent = relayed_part(d.crlf())
        sigs, received, rest = harness.split_added(sent)
        self.assertEqual(rest, msg)
        self.assertEqual(sigs.count(b"DKIM-Signature:"), len(sels))
        # The envelope sender is the VERP address of this message and
        # recipient 0.
        local, dom = d.mail_from.split("@")
        self.assertEqual(dom, "bounces.own-domain.com")
        key = harness.verp_key(f"{h.dir}/secret")
        self.assertEqual(harness.verp_decode(key, local), (qid, 0))
        # Delivered: nothing left in the spool or the state directory.
        self.assertTrue(wait_for(lambda: h.spool_files() == [], 10),
                        h.spool_files())
        self.assertEqual(os.listdir(f"{h.spool}/state"), [])
        self.assertRegex(h.logtext(), rf"{qid} delivered rcpt=<{RCPT}> "
                         r"relay=mx1\.rcpt-domain\.org attempts=1")
        return d

    def test_mx_rsa(self):
        h = self.relayd(("rsa",))
        self.check(h, "mx-rsa", ("rsa",), [("r2026", "rsa-sha256")])

    def test_mx_ed25519(self):
        h = self.relayd(("ed25519",))
        self.check(h, "mx-ed25519", ("ed25519",),
                   [("e2026", "ed25519-sha256")])

    def test_mx_dual(self):
        h = self.relayd(("rsa", "ed25519"))
        d = self.check(h, "mx-dual", ("rsa", "ed25519"),
                       [("r2026", "rsa-sha256"),
                        ("e2026", "ed25519-sha256")])
        self.assertEqual(sorted(self.w.dkimpy_verify(relayed_part(
            d.crlf()))), [
            ("own-domain.com", "e2026", "ed25519-sha256", True),
            ("own-domain.com", "r2026", "rsa-sha256", True)])
        # The Postfix MX offers STARTTLS: opportunistic TLS used it.
        self.assertRegex(d.header("Received"), r"with ESMTPS")

    def test_smarthost(self):
        pwf = f"{self.w.dir}/smarthost-pw"
        secs = self.w.smarthost_sections(pwf)
        secs["smarthost"]["ca_file"] = self.w.ca_cert
        secs["dns"] = self.w.relayd_sections()["dns"]
        h = self.relayd(("rsa", "ed25519"), secs)
        qid, msg = submit(h, "via-smarthost")
        d = self.one("via-smarthost", h)
        self.assertEqual(d.results.get("spf"), ["pass"], d)
        self.assertEqual(d.results.get("dmarc"), ["pass"], d)
        self.assertEqual(sorted(d.dkim()), [
            ("pass", "own-domain.com", "e2026", "ed25519-sha256"),
            ("pass", "own-domain.com", "r2026", "rsa-sha256")], d)
        self.assertEqual(harness.split_added(relayed_part(d.crlf()))[2],
                         msg)
        self.assertIn("smtp.upstream.test", d.msg.get_all("Received")[1]
                      if len(d.msg.get_all("Received")) > 1 else "")
        local = d.mail_from.split("@")[0]
        self.assertEqual(harness.verp_decode(
            harness.verp_key(f"{h.dir}/secret"), local), (qid, 0))
        log = self.w.upstream.maillog()
        self.assertRegex(log, r"sasl_method=(PLAIN|LOGIN), "
                         r"sasl_username=relay-user")
        self.assertRegex(h.logtext(), rf"{qid} delivered rcpt=<{RCPT}> "
                         r"relay=smtp\.upstream\.test")


class PythonMx(unittest.TestCase):
    """Programmable MX hosts: retries, DSNs, MX fallback, TLS policy,
    crash recovery."""

    @classmethod
    def setUpClass(cls):
        cls.w = world.World(algorithms=("rsa",), receiver="python")

    @classmethod
    def tearDownClass(cls):
        cls.w.stop()

    def receiver(self, host=world.MX_HOSTS[0][1], **kw):
        r = self.w.receiver(host=host, **kw)
        self.w.receivers.remove(r)
        self.addCleanup(r.stop)
        return r

    def relayd(self, extra=None):
        secs = self.w.relayd_sections()
        for sec, kv in (extra or {}).items():
            secs.setdefault(sec, {}).update(kv)
        h = harness.Relayd(sections=secs)
        self.addCleanup(h.cleanup)
        h.start()
        return h

    def key(self, h):
        return harness.verp_key(f"{h.dir}/secret")

    def test_4xx_then_retry_once(self):
        calls = []

        def reply(t):
            calls.append(time.time())
            return "451 4.3.0 try again later" if len(calls) == 1 else None

        r = self.receiver(reply=reply)
        h = self.relayd()
        qid, msg = submit(h, "4xx")
        got = r.wait(2, timeout=20)
        self.assertEqual(len(got), 2, h.tail(30))
        time.sleep(2.5)         # more than retry_max's first steps
        self.assertEqual(len(r.got), 2)     # no third copy
        self.assertGreaterEqual(calls[1] - calls[0], 0.7)  # backoff
        for t in r.got:
            self.assertEqual(t["data"], r.got[0]["data"])
            self.assertEqual(t["rcpt"], [RCPT])
            self.assertEqual(harness.verp_decode(
                self.key(h), t["mail_from"].split("@")[0]), (qid, 0))
        self.assertEqual(harness.as_submitted(r.got[1]["data"]), msg)
        log = h.logtext()
        self.assertRegex(log, rf"{qid} deferred rcpt=<{RCPT}> "
                         r"relay=mx1\.rcpt-domain\.org attempts=1 "
                         r"retry_in=1s reply=\"451 4\.3\.0 try again later\"")
        self.assertRegex(log, rf"{qid} delivered rcpt=<{RCPT}> "
                         r"relay=mx1\.rcpt-domain\.org attempts=2")
        self.assertTrue(wait_for(lambda: h.spool_files() == [], 10))

    def test_4xx_next_mx(self):
        # mx1 answers 451 after the data: mx2 gets the message at once.
        r1 = self.receiver(reply=lambda t: "451 4.3.2 not now")
        r2 = self.receiver(host=world.MX_HOSTS[1][1])
        h = self.relayd()
        qid, msg = submit(h, "next-mx")
        self.assertEqual(len(r2.wait(1, timeout=10)), 1, h.tail(30))
        self.assertEqual(len(r1.got), 1)
        self.assertEqual(r2.got[0]["data"], r1.got[0]["data"])
        self.assertEqual(harness.as_submitted(r2.got[0]["data"]), msg)
        log = h.logtext()
        self.assertRegex(log, rf"{qid} next_mx rcpt=<{RCPT}> "
                         r"relay=mx1\.rcpt-domain\.org "
                         r"reply=\"451 4\.3\.2 not now\"")
        self.assertRegex(log, rf"{qid} delivered rcpt=<{RCPT}> "
                         r"relay=mx2\.rcpt-domain\.org attempts=1")
        self.assertTrue(wait_for(lambda: h.spool_files() == [], 10))

    def test_5xx_dsn_to_sender(self):
        r = self.receiver(rcpt_reply=lambda a: "550 5.1.1 <%s>: no such "
                          "user \x01here" % a if a.startswith("nobody@")
                          else None)
        sink = self.receiver(host=world.SENDER_MX_IP)
        h = self.relayd()
        qid, msg = submit(h, "5xx", rcpts=(RCPT, "nobody@rcpt-domain.org"))
        got = sink.wait(1, timeout=20)
        self.assertEqual(len(got), 1, h.tail(30))
        dsn = got[0]
        self.assertEqual(dsn["mail_from"], "<>")   # aiosmtpd's null sender
        self.assertEqual(dsn["rcpt"], [SENDER])
        m, blocks, hdrs = dsn_parts(dsn["data"])
        self.assertEqual(m["From"], "Mail Delivery System "
                         "<MAILER-DAEMON@relay.test>")
        self.assertEqual(m["To"], f"<{SENDER}>")
        self.assertEqual(blocks[0]["reporting-mta"], "dns; relay.test")
        self.assertIn("arrival-date", blocks[0])
        self.assertEqual(len(blocks), 2, blocks)     # one failed recipient
        b = blocks[1]
        self.assertEqual(b["final-recipient"],
                         "rfc822; nobody@rcpt-domain.org")
        self.assertEqual(b["action"], "failed")
        self.assertEqual(b["status"], "5.1.1")
        self.assertEqual(b["remote-mta"], "dns; mx1.rcpt-domain.org")
        # The reply, escaped (the control byte cannot reach the report).
        self.assertEqual(b["diagnostic-code"],
                         "smtp; 550 5.1.1 <nobody@rcpt-domain.org>: no "
                         "such user \\x01here")
        self.assertIn("Subject: 5xx", hdrs)
        self.assertNotIn("Hello.", hdrs)
        # The other recipient was delivered, once.
        ok = [t for t in r.got if t["rcpt"] == [RCPT]]
        self.assertEqual(len(ok), 1)
        self.assertEqual(harness.verp_decode(
            self.key(h), ok[0]["mail_from"].split("@")[0]), (qid, 0))
        time.sleep(1.5)
        self.assertEqual(len(sink.got), 1)      # one report
        self.assertTrue(wait_for(lambda: h.spool_files() == [], 10))

    def test_connection_reuse(self):
        # Five recipients, one connection at a time, three transactions
        # per connection: two connections carry them.
        r = self.receiver()
        h = self.relayd({"delivery": {"max_connections_per_host": "1",
                                      "max_messages_per_connection": "3"}})
        rcpts = tuple(f"u{i}@rcpt-domain.org" for i in range(5))
        qid, msg = submit(h, "reuse", rcpts=rcpts)
        self.assertEqual(len(r.wait(5, timeout=20)), 5, h.tail(30))
        self.assertTrue(wait_for(lambda: h.spool_files() == [], 10))
        self.assertEqual(sorted(t["rcpt"][0] for t in r.got), list(rcpts))
        key = self.key(h)
        self.assertEqual(sorted(harness.verp_decode(
            key, t["mail_from"].split("@")[0]) for t in r.got),
            [(qid, i) for i in range(5)])
        log = h.logtext()
        self.assertEqual(len(re.findall(r"smtp_client connected "
                                        r"addr=127\.0\.0\.2:25", log)), 2,
                         log)

    def test_global_connection_limit(self):
        # max_connections = 1, two destinations: one connection at a time,
        # the idle one closed at once for the other domain.
        r1 = self.receiver()
        r2 = self.receiver(host=world.IMPLICIT_MX_IP)
        h = self.relayd({"delivery": {"max_connections": "1"}})
        t0 = time.time()
        qid, msg = submit(h, "limit", rcpts=(RCPT, "x@no-mx.org"))
        self.assertEqual(len(r1.wait(1, timeout=10)), 1, h.tail(30))
        self.assertEqual(len(r2.wait(1, timeout=10)), 1, h.tail(30))
        # Sooner than the 2 s an idle connection would otherwise wait.
        self.assertLess(time.time() - t0, 1.5)
        self.assertEqual(r2.got[0]["rcpt"], ["x@no-mx.org"])
        self.assertEqual(harness.verp_decode(
            self.key(h), r2.got[0]["mail_from"].split("@")[0]), (qid, 1))
        events = re.findall(r"smtp_client (connected|closed) addr=(\S+)",
                            h.logtext())
        open_now = 0
        for what, addr in events:
            open_now += 1 if what == "connected" else -1
            self.assertLessEqual(open_now, 1, events)
        self.assertEqual([a for w, a in events if w == "connected"],
                         ["127.0.0.2:25", "127.0.0.5:25"] if
                         events[0][1] == "127.0.0.2:25" else
                         ["127.0.0.5:25", "127.0.0.2:25"])

    def test_delay_warning_then_expiry(self):
        # Always 451: one "delayed" report after delay_warning, then the
        # message expires after max_age (its minimum, 1m) and fails with
        # the last error.
        r = self.receiver(reply=lambda t: "451 4.3.0 busy, come back")
        sink = self.receiver(host=world.SENDER_MX_IP)
        h = self.relayd({"queue": {"delay_warning": "2s", "max_age": "1m"}})
        t0 = time.time()
        qid, msg = submit(h, "slow")
        got = sink.wait(1, timeout=20)
        self.assertEqual(len(got), 1, h.tail(30))
        m, blocks, hdrs = dsn_parts(got[0]["data"])
        self.assertEqual(m["Subject"], "Delayed Mail (still being retried)")
        self.assertEqual(len(blocks), 2, blocks)
        b = blocks[1]
        self.assertEqual(b["final-recipient"], f"rfc822; {RCPT}")
        self.assertEqual(b["action"], "delayed")
        self.assertEqual(b["status"], "4.3.0")
        self.assertEqual(b["diagnostic-code"],
                         "smtp; 451 4.3.0 busy, come back")
        self.assertIn("will-retry-until", b)
        self.assertIn("Subject: slow", hdrs)
        self.assertEqual(h.spool_files(), [qid])
        with open(f"{h.spool}/state/{qid}") as f:
            self.assertTrue(f.read().startswith("RELAYD-STATE 1\n"
                                                "warned 1\nrcpt 0 pending"))
        got = sink.wait(2, timeout=80)
        self.assertEqual(len(got), 2, h.tail(30))
        self.assertGreaterEqual(time.time() - t0, 59)
        m, blocks, hdrs = dsn_parts(got[1]["data"])
        self.assertEqual(m["Subject"], "Undelivered Mail Returned to Sender")
        b = blocks[1]
        self.assertEqual(b["action"], "failed")
        self.assertEqual(b["status"], "4.3.0")
        self.assertEqual(b["remote-mta"], "dns; mx1.rcpt-domain.org")
        self.assertEqual(b["diagnostic-code"],
                         "smtp; 451 4.3.0 busy, come back")
        self.assertNotIn("will-retry-until", b)
        self.assertTrue(wait_for(lambda: h.spool_files() == [], 10))
        self.assertRegex(h.logtext(), rf"{qid} expired rcpt=<{RCPT}> ")
        self.assertGreater(len(r.got), 5)      # retried all along

    def test_first_mx_down(self):
        # Nothing listens on mx1 (127.0.0.2): refused, then mx2.
        r = self.receiver(host=world.MX_HOSTS[1][1])
        h = self.relayd()
        qid, msg = submit(h, "mx2")
        got = r.wait(1, timeout=20)
        self.assertEqual(len(got), 1, h.tail(30))
        self.assertEqual(harness.as_submitted(got[0]["data"]), msg)
        log = h.logtext()
        self.assertRegex(log, rf"{qid} connect_failed "
                         r"host=mx1\.rcpt-domain\.org addr=127\.0\.0\.2:25")
        self.assertRegex(log, rf"{qid} delivered rcpt=<{RCPT}> "
                         r"relay=mx2\.rcpt-domain\.org attempts=1")

    def test_null_mx_and_nxdomain(self):
        sink = self.receiver(host=world.SENDER_MX_IP)
        h = self.relayd()
        t0 = time.time()
        qid, msg = submit(h, "dns", rcpts=("a@null-mx.org",
                                           "b@nx-domain.org"))
        got = sink.wait(1, timeout=15)
        self.assertEqual(len(got), 1, h.tail(30))
        self.assertLess(time.time() - t0, 10)
        _, blocks, hdrs = dsn_parts(got[0]["data"])
        by = {b["final-recipient"]: b for b in blocks[1:]}
        self.assertEqual(sorted(by), ["rfc822; a@null-mx.org",
                                      "rfc822; b@nx-domain.org"])
        self.assertEqual(by["rfc822; a@null-mx.org"]["status"], "5.1.10")
        self.assertEqual(by["rfc822; b@nx-domain.org"]["status"], "5.1.2")
        for b in by.values():
            self.assertEqual(b["action"], "failed")
            self.assertNotIn("remote-mta", b)
        self.assertIn("Subject: dns", hdrs)
        self.assertTrue(wait_for(lambda: h.spool_files() == [], 10))

    def test_tls_required_mx_without_starttls(self):
        raw = RawServer(world.MX_HOSTS[0][1], 25)
        self.addCleanup(raw.stop)
        h = self.relayd({"delivery": {"tls": "required"}})
        qid, msg = submit(h, "tls-required")
        self.assertTrue(wait_for(lambda: re.search(
            rf"{qid} deferred rcpt=<{RCPT}> relay=mx1\.rcpt-domain\.org "
            r"attempts=1", h.logtext()), 15), h.tail(30))
        time.sleep(1.5)     # a retry or two more
        cmds = raw.commands()
        self.assertIn(b"EHLO", cmds)
        for c in (b"MAIL", b"RCPT", b"DATA", b"AUTH"):
            self.assertNotIn(c, cmds)
        self.assertNotIn(b"Hello.\r\n", raw.lines)
        # Still queued, its state on disk: pending, attempts, 4.7.4.
        self.assertEqual(h.spool_files(), [qid])
        with open(f"{h.spool}/state/{qid}") as f:
            st = f.read()
        self.assertRegex(st, r"\ARELAYD-STATE 1\nrcpt 0 pending [1-9]\d* "
                         r"\d+ 0 0 4\.7\.4 mx1\.rcpt-domain\.org .*STARTTLS"
                         r".*\nend 1\n\Z")

    def test_tls_verify(self):
        # tls = verify: the MX certificate must chain to ca_file and name
        # the MX host.  With the world's CA: delivered over TLS.
        r = self.receiver(tls=self.w.mx_cert)
        h = self.relayd({"delivery": {"tls": "verify",
                                      "ca_file": self.w.ca_cert}})
        qid, msg = submit(h, "verified")
        got = r.wait(1, timeout=15)
        self.assertEqual(len(got), 1, h.tail(30))
        self.assertTrue(got[0]["tls"])
        self.assertEqual(harness.as_submitted(got[0]["data"]), msg)

    def test_tls_verify_unknown_ca(self):
        # Without the world's CA the certificate does not verify: deferred
        # before MAIL, the message stays queued.
        r = self.receiver(tls=self.w.mx_cert)
        h = self.relayd({"delivery": {"tls": "verify"}})
        qid, msg = submit(h, "unverified")
        self.assertTrue(wait_for(lambda: re.search(
            rf"{qid} deferred rcpt=<{RCPT}> relay=mx1\.rcpt-domain\.org "
            r"attempts=1 .*certificate", h.logtext()), 15), h.tail(30))
        self.assertEqual(r.commands, [])
        self.assertEqual(h.spool_files(), [qid])

    def test_tls_required_smarthost_without_starttls(self):
        # The smarthost offers AUTH but no STARTTLS: nothing is sent.
        raw = RawServer(world.UPSTREAM_IP, 587)
        self.addCleanup(raw.stop)
        pwf = f"{self.w.dir}/pw-raw"
        secs = self.w.smarthost_sections(pwf)
        secs["dns"] = self.w.relayd_sections()["dns"]
        h = self.relayd(secs)
        qid, msg = submit(h, "smarthost-clear")
        self.assertTrue(wait_for(lambda: re.search(
            rf"{qid} deferred rcpt=<{RCPT}> relay=smtp\.upstream\.test "
            r"attempts=1", h.logtext()), 15), h.tail(30))
        cmds = raw.commands()
        self.assertIn(b"EHLO", cmds)
        for c in (b"AUTH", b"MAIL", b"RCPT", b"DATA"):
            self.assertNotIn(c, cmds)
        self.assertFalse(any(self.w.smarthost_password.encode() in ln
                             for ln in raw.lines))
        self.assertEqual(h.spool_files(), [qid])

    def test_restart_resumes_from_state(self):
        # Held, stopped, state edited as a crash could leave it: recipient
        # 0 delivered, 1 pending; a second message's state is garbage; an
        # orphan state file and an unfinished write.  After the restart
        # only what is not delivered goes out.
        r = self.receiver()
        h = self.relayd({"queue": {"hold": "yes"}})
        q1, _ = submit(h, "resume-1", rcpts=("a@rcpt-domain.org",
                                             "b@rcpt-domain.org"))
        q2, _ = submit(h, "resume-2", rcpts=("c@rcpt-domain.org",))
        h.stop()
        self.assertEqual(h.spool_files(), sorted([q1, q2]))
        sd = f"{h.spool}/state"
        with open(f"{sd}/{q1}", "w") as f:
            f.write("RELAYD-STATE 1\n"
                    "rcpt 0 delivered 1 0 0 0 - - \n"
                    "rcpt 1 pending 1 0 0 451 4.3.0 mx1.rcpt-domain.org "
                    "451 4.3.0 later\n"
                    "end 2\n")
        with open(f"{sd}/{q2}", "w") as f:
            f.write("RELAYD-STATE 1\nrcpt 0 deliv")
        with open(f"{sd}/00000000000000aa", "w") as f:
            f.write("RELAYD-STATE 1\nend 0\n")
        with open(f"{sd}/{q1}.tmp", "w") as f:
            f.write("RELAYD-STATE 1\n")
        with open(h.conf) as f:
            conf = f.read()
        with open(h.conf, "w") as f:
            f.write(conf.replace("hold = yes", "hold = no"))
        h.start()
        self.assertEqual(len(r.wait(2, timeout=15)), 2, h.tail(30))
        time.sleep(1)
        self.assertEqual(sorted(t["rcpt"][0] for t in r.got),
                         ["b@rcpt-domain.org", "c@rcpt-domain.org"])
        key = self.key(h)
        self.assertEqual(sorted(harness.verp_decode(
            key, t["mail_from"].split("@")[0]) for t in r.got),
            sorted([(q1, 1), (q2, 0)]))
        log = h.logtext()
        self.assertRegex(log, rf"{q2} state_unparsable")
        self.assertRegex(log, r"state_orphan_deleted file=.?00000000000000aa")
        self.assertRegex(log, rf"{q1} delivered rcpt=<b@rcpt-domain\.org> "
                         r"relay=mx1\.rcpt-domain\.org attempts=2")
        self.assertTrue(wait_for(lambda: h.spool_files() == [], 10))
        self.assertEqual(os.listdir(sd), [])

    def crash_during_deliveries(self, stop):
        def slow(t):
            time.sleep(0.25)
            return None

        r = self.receiver(reply=slow)
        h = self.relayd()
        want = set()
        for i in range(8):
            qid, _ = submit(h, f"crash-{i}",
                            rcpts=(f"r{i}a@rcpt-domain.org",
                                   f"r{i}b@rcpt-domain.org"))
            want |= {(qid, 0), (qid, 1)}
        self.assertTrue(wait_for(lambda: len(r.got) >= 4, 20), h.tail(30))
        stop(h)
        n_before = len(r.got)
        self.assertLess(n_before, 16)
        # A clean stop leaves no memory error or leak behind (meaningful
        # with a sanitizer build).
        self.assertNotRegex(h.logtext(), r"Sanitizer|runtime error")
        h.start()
        key = self.key(h)

        def seen():
            return {harness.verp_decode(key, t["mail_from"].split("@")[0])
                    for t in r.got}

        self.assertTrue(wait_for(lambda: want <= seen(), 40),
                        (sorted(want - seen()), h.tail(30)))
        self.assertEqual(seen(), want)
        # Each recipient got its own transaction with its own sender.
        for t in r.got:
            qid, i = harness.verp_decode(key, t["mail_from"].split("@")[0])
            self.assertEqual(len(t["rcpt"]), 1)
            self.assertRegex(t["rcpt"][0], r"r\d[ab]@rcpt-domain\.org")
            self.assertEqual(t["rcpt"][0][2], "ab"[i])
        self.assertTrue(wait_for(lambda: h.spool_files() == [], 15),
                        h.spool_files())
        self.assertEqual(os.listdir(f"{h.spool}/state"), [])
        return n_before, len(r.got), len(want)

    def test_kill9_during_deliveries(self):
        n = self.crash_during_deliveries(lambda h: h.kill9())
        print("\nkill -9 after %d transactions; %d in all for %d "
              "recipients" % n, file=sys.stderr)

    def test_sigterm_during_deliveries(self):
        n = self.crash_during_deliveries(lambda h: h.stop())
        print("\nSIGTERM after %d transactions; %d in all for %d "
              "recipients" % n, file=sys.stderr)

if __name__ == "__main__":
    world.isolate()
    unittest.main(verbosity=2)
