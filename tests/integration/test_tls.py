"""Integration: STARTTLS (RFC 3207) and implicit TLS (RFC 8314) with three
real clients (smtplib, swaks, curl), the state reset after STARTTLS, the
plaintext injection case (CVE-2011-0411), client certificates that are
never requested but must be accepted, and the TLS 1.2 minimum.
"""
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Relayd, read_reply, send_cmd, message, plain_b64,  # noqa: E402
                     transaction, pending, sh)


# TLS 1.1 is deprecated: that is the point of the test that uses it.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=__name__)


def wait_captured(h, pred, wait=10):
    end = time.time() + wait
    while True:
        got = [(j, e) for j, e in h.captured(wait=0) if pred(j, e)]
        if got or time.time() > end:
            return got
        time.sleep(0.05)


def by_subject(subject):
    needle = b"\r\nSubject: " + subject.encode() + b"\r\n"
    return lambda j, e: needle in b"\r\n" + e


class TLS(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = Relayd()
        cls.h.start()
        cls.tmp = tempfile.mkdtemp(prefix="relayd-tls-client-")
        sh(f"openssl req -x509 -newkey rsa:2048 -nodes -keyout {cls.tmp}/client.key "
           f"-out {cls.tmp}/client.crt -subj /CN=client.test -days 2 2>/dev/null")

    @classmethod
    def tearDownClass(cls):
        cls.h.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def assertReply(self, got, code, text_start):
        self.assertEqual(got[0], code, got)
        self.assertTrue(got[1].startswith(text_start),
                        f"{got!r} does not start with {text_start!r}")

    def starttls_raw(self, pipelined=b""):
        s, banner = self.h.raw("starttls")
        self.assertEqual(banner[0], 220)
        self.assertEqual(send_cmd(s, "EHLO client.test")[0], 250)
        s.sendall(b"STARTTLS\r\n" + pipelined)
        self.assertEqual(read_reply(s), (220, "2.0.0 Ready to start TLS"))
        self.assertEqual(pending(s), b"")
        return self.h.ctx().wrap_socket(s)

    # --- smtplib ---------------------------------------------------------
    def test_smtplib_starttls(self):
        c = self.h.client("starttls")
        c.sendmail("alice@own-domain.com", ["r1@rcpt-domain.org"],
                   message(subject="smtplib-starttls"))
        c.quit()
        self.assertEqual(len(wait_captured(self.h, by_subject("smtplib-starttls"))), 1)

    def test_smtplib_implicit(self):
        c = self.h.client("implicit")
        c.sendmail("alice@own-domain.com", ["r1@rcpt-domain.org"],
                   message(subject="smtplib-implicit"))
        c.quit()
        self.assertEqual(len(wait_captured(self.h, by_subject("smtplib-implicit"))), 1)

    def test_ehlo_after_tls(self):
        t = self.starttls_raw()
        code, text = send_cmd(t, "EHLO client.test")
        self.assertEqual(code, 250, text)
        kw = [k.upper() for k in text.split("\n")[1:]]
        self.assertIn("AUTH PLAIN LOGIN", kw)
        self.assertNotIn("STARTTLS", kw)
        self.assertReply(send_cmd(t, "STARTTLS"), 503, "5.5.1")
        t.close()
        s, _ = self.h.raw("implicit")
        code, text = send_cmd(s, "EHLO client.test")
        kw = [k.upper() for k in text.split("\n")[1:]]
        self.assertIn("AUTH PLAIN LOGIN", kw)
        self.assertNotIn("STARTTLS", kw)
        s.close()

    def test_state_reset_after_starttls(self):
        t = self.starttls_raw()
        self.assertReply(send_cmd(t, "MAIL FROM:<alice@own-domain.com>"), 503, "5.5.1")
        self.assertEqual(send_cmd(t, "EHLO client.test")[0], 250)
        self.assertReply(send_cmd(t, "MAIL FROM:<alice@own-domain.com>"), 530,
                         "5.7.0 Authentication required")
        self.assertReply(send_cmd(t, "AUTH PLAIN " + plain_b64("alice", "alice-pw")),
                         235, "2.7.0")
        code, text = transaction(t, message(subject="after-starttls"))
        self.assertEqual(code, 250, text)
        t.close()

    def test_starttls_injection(self):
        t = self.starttls_raw(b"NOOP\r\n")
        # The first reply under TLS must answer HELP (214), not the NOOP
        # that was pipelined in clear text (250).
        code, text = send_cmd(t, "HELP")
        self.assertEqual(code, 214, f"plaintext NOOP was executed: {code} {text}")
        self.assertReply(send_cmd(t, "NOOP"), 250, "2.0.0")
        self.assertReply(send_cmd(t, "QUIT"), 221, "2.0.0")
        t.close()

    def test_starttls_injection_transaction(self):
        t = self.starttls_raw(b"EHLO evil\r\nAUTH PLAIN " +
                              plain_b64("alice", "alice-pw").encode() +
                              b"\r\nMAIL FROM:<alice@own-domain.com>\r\n")
        self.assertEqual(send_cmd(t, "HELP")[0], 214)
        self.assertReply(send_cmd(t, "MAIL FROM:<alice@own-domain.com>"), 503, "5.5.1")
        t.close()

    # --- client certificates ---------------------------------------------
    def test_client_certificate(self):
        for kind in ("implicit", "starttls"):
            with self.subTest(kind=kind):
                ctx = self.h.ctx()
                ctx.load_cert_chain(f"{self.tmp}/client.crt", f"{self.tmp}/client.key")
                import smtplib
                subj = "client-cert-" + kind
                if kind == "implicit":
                    c = smtplib.SMTP_SSL(self.h.host, self.h.port_tls, context=ctx, timeout=20)
                else:
                    c = smtplib.SMTP(self.h.host, self.h.port_starttls, timeout=20)
                    c.ehlo("client.test")
                    c.starttls(context=ctx)
                c.ehlo("client.test")
                c.login("alice", "alice-pw")
                c.sendmail("alice@own-domain.com", ["r@rcpt-domain.org"],
                           message(subject=subj))
                c.quit()
                self.assertEqual(len(wait_captured(self.h, by_subject(subj))), 1)

    # --- TLS versions ----------------------------------------------------
    def test_tls13_and_12(self):
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=v):
                ctx = self.h.ctx()
                ctx.minimum_version = v
                ctx.maximum_version = v
                s = ctx.wrap_socket(socket.create_connection((self.h.host, self.h.port_tls), 10))
                self.assertEqual(read_reply(s)[0], 220)
                s.close()

    @staticmethod
    def tls11_ctx():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        return ctx

    def local_tls11_works(self):
        """Can this OpenSSL speak TLS 1.1 at all (to a local server that
        allows it)?"""
        try:
            sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            sctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            sctx.minimum_version = ssl.TLSVersion.TLSv1_1
            sctx.maximum_version = ssl.TLSVersion.TLSv1_1
            sctx.load_cert_chain(f"{self.h.dir}/tls.crt", f"{self.h.dir}/tls.key")
            cctx = self.tls11_ctx()
        except (ssl.SSLError, ValueError):
            return False
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(1)
        ok = []

        def serve():
            try:
                c, _ = ls.accept()
                c.settimeout(5)
                with sctx.wrap_socket(c, server_side=True):
                    ok.append(True)
            except (OSError, ssl.SSLError):
                pass
        th = threading.Thread(target=serve)
        th.start()
        try:
            c = cctx.wrap_socket(socket.create_connection(ls.getsockname(), 5))
            c.close()
        except (OSError, ssl.SSLError):
            pass
        th.join(10)
        ls.close()
        return bool(ok)

    def test_tls11_refused(self):
        if not self.local_tls11_works():
            self.skipTest("this OpenSSL cannot make a TLS 1.1 connection even to a "
                          "server that allows it, so the refusal cannot be observed")
        with self.assertRaises((ssl.SSLError, ConnectionResetError)):
            s = self.tls11_ctx().wrap_socket(
                socket.create_connection((self.h.host, self.h.port_tls), 10))
            s.close()

    # --- swaks -----------------------------------------------------------
    def swaks(self, *args):
        if not shutil.which("swaks"):
            self.fail("swaks is not installed (etc/install-deps test installs it)")
        return subprocess.run(["swaks", "--server", self.h.host, "--from", "alice@own-domain.com",
                               "--to", "swaks@rcpt-domain.org", "--auth-user", "alice",
                               "--auth-password", "alice-pw", "--timeout", "20"] + list(args),
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)

    def test_swaks_starttls_plain(self):
        r = self.swaks("--port", str(self.h.port_starttls), "--tls", "--auth", "PLAIN",
                       "--header", "Subject: swaks-starttls",
                       "--header", "From: alice@own-domain.com")
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-1000:])
        self.assertIn("<~  250 2.0.0 Ok: queued as ", r.stdout)
        self.assertEqual(len(wait_captured(self.h, by_subject("swaks-starttls"))), 1)

    def test_swaks_implicit_login(self):
        r = self.swaks("--port", str(self.h.port_tls), "--tls-on-connect", "--auth", "LOGIN",
                       "--header", "Subject: swaks-implicit",
                       "--header", "From: alice@own-domain.com")
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-1000:])
        self.assertEqual(len(wait_captured(self.h, by_subject("swaks-implicit"))), 1)

    def test_swaks_pipelining(self):
        r = self.swaks("--port", str(self.h.port_starttls), "--tls", "--auth", "PLAIN",
                       "--pipeline", "--header", "Subject: swaks-pipeline",
                       "--header", "From: alice@own-domain.com")
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-1000:])
        self.assertEqual(len(wait_captured(self.h, by_subject("swaks-pipeline"))), 1)

    # --- curl ------------------------------------------------------------
    def curl(self, url, subject, *extra):
        if not shutil.which("curl"):
            self.fail("curl is not installed (etc/install-deps test installs it)")
        f = f"{self.tmp}/{subject}.eml"
        with open(f, "wb") as fh:
            fh.write(message(subject=subject))
        return subprocess.run(["curl", "-sS", "-k", "--max-time", "30", url,
                               "--mail-from", "alice@own-domain.com",
                               "--mail-rcpt", "curl@rcpt-domain.org",
                               "--upload-file", f, "--user", "alice:alice-pw"] + list(extra),
                              capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)

    def test_curl_starttls(self):
        r = self.curl(f"smtp://{self.h.host}:{self.h.port_starttls}", "curl-starttls",
                      "--ssl-reqd")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(wait_captured(self.h, by_subject("curl-starttls"))), 1)

    def test_curl_implicit(self):
        r = self.curl(f"smtps://{self.h.host}:{self.h.port_tls}", "curl-implicit")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(wait_captured(self.h, by_subject("curl-implicit"))), 1)

    def test_curl_refuses_without_tls(self):
        # Without --ssl-reqd curl does not upgrade; AUTH is refused in clear.
        r = self.curl(f"smtp://{self.h.host}:{self.h.port_starttls}", "curl-clear")
        self.assertNotEqual(r.returncode, 0, r.stderr)
        time.sleep(0.3)
        self.assertEqual(wait_captured(self.h, by_subject("curl-clear"), wait=0), [])


class AuthResetByStarttls(unittest.TestCase):
    """With insecure_auth = yes on a STARTTLS listener a client can log in
    before TLS; STARTTLS must forget that login (RFC 3207 section 4.2)."""

    def test_auth_forgotten(self):
        h = Relayd(sections={"listen submission": {"insecure_auth": "yes"}})
        try:
            h.start()
            s, _ = h.raw("starttls")
            self.assertEqual(send_cmd(s, "EHLO client.test")[0], 250)
            self.assertEqual(send_cmd(s, "AUTH PLAIN " + plain_b64("alice", "alice-pw"))[0], 235)
            self.assertEqual(send_cmd(s, "STARTTLS"), (220, "2.0.0 Ready to start TLS"))
            t = h.ctx().wrap_socket(s)
            self.assertEqual(send_cmd(t, "EHLO client.test")[0], 250)
            self.assertEqual(send_cmd(t, "MAIL FROM:<alice@own-domain.com>"),
                             (530, "5.7.0 Authentication required"))
            self.assertEqual(send_cmd(t, "AUTH PLAIN " + plain_b64("alice", "alice-pw"))[0], 235)
            self.assertEqual(send_cmd(t, "MAIL FROM:<alice@own-domain.com>")[0], 250)
            t.close()
        finally:
            h.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
