"""Integration: SMTP AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN.

Each mechanism with and without an initial response, each failure with its
exact reply, the 12288-octet response limit, TLS-only offering, the
per-address failure delay and the fail2ban-friendly log line.  Tests that
fail on purpose connect from their own 127.0.0.x source address so the
per-address delay of one test does not slow another.
"""
import base64
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Relayd, send_cmd, plain_b64, transaction, message  # noqa: E402


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


_next_src = [10]


def src():
    """A fresh loopback source address for a test that fails AUTH."""
    _next_src[0] += 1
    return f"127.0.0.{_next_src[0]}"


class Auth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = Relayd(sections={"limits": {"auth_delay_max": "4s"}})
        cls.h.start()

    @classmethod
    def tearDownClass(cls):
        cls.h.cleanup()

    def assertReply(self, got, code, text_start):
        self.assertEqual(got[0], code, got)
        self.assertTrue(got[1].startswith(text_start),
                        f"{got!r} does not start with {text_start!r}")

    def sess(self, source=None, kind="plain"):
        return self.h.session(kind=kind, user=None, source=source)

    def test_plain_initial_response(self):
        s = self.sess()
        self.assertReply(send_cmd(s, "AUTH PLAIN " + plain_b64("alice", "alice-pw")),
                         235, "2.7.0")
        self.assertReply(send_cmd(s, "MAIL FROM:<alice@own-domain.com>"), 250, "2.1.0")
        s.close()

    def test_plain_authzid_is_user(self):
        s = self.sess()
        self.assertReply(send_cmd(s, "AUTH PLAIN " + plain_b64("alice", "alice-pw", "alice")),
                         235, "2.7.0")
        s.close()

    def test_plain_no_initial_response(self):
        s = self.sess()
        code, text = send_cmd(s, "AUTH PLAIN")
        self.assertEqual(code, 334, text)
        self.assertEqual(text.strip(), "")
        self.assertReply(send_cmd(s, plain_b64("alice", "alice-pw")), 235, "2.7.0")
        s.close()

    def test_login(self):
        s = self.sess()
        self.assertEqual(send_cmd(s, "AUTH LOGIN"), (334, "VXNlcm5hbWU6"))
        self.assertEqual(send_cmd(s, b64("bob")), (334, "UGFzc3dvcmQ6"))
        self.assertReply(send_cmd(s, b64("bob-pw")), 235, "2.7.0")
        self.assertReply(send_cmd(s, "MAIL FROM:<bob@tenant-b.net>"), 250, "2.1.0")
        s.close()

    def test_lowercase_mechanism(self):
        s = self.sess()
        self.assertReply(send_cmd(s, "auth plain " + plain_b64("alice", "alice-pw")),
                         235, "2.7.0")
        s.close()

    def test_smtplib_all_listeners(self):
        for kind in ("plain", "starttls", "implicit"):
            with self.subTest(kind=kind):
                c = self.h.client(kind)
                c.sendmail("alice@own-domain.com", ["r@rcpt-domain.org"],
                           message(subject="smtplib " + kind))
                c.quit()

    def test_cancel(self):
        s = self.sess(src())
        self.assertEqual(send_cmd(s, "AUTH PLAIN")[0], 334)
        self.assertReply(send_cmd(s, "*"), 501, "5.0.0")
        self.assertEqual(send_cmd(s, "AUTH LOGIN")[0], 334)
        self.assertReply(send_cmd(s, "*"), 501, "5.0.0")
        # The session goes on and can authenticate.
        self.assertReply(send_cmd(s, "AUTH PLAIN " + plain_b64("alice", "alice-pw")),
                         235, "2.7.0")
        s.close()

    def test_bad_base64(self):
        s = self.sess(src())
        self.assertReply(send_cmd(s, "AUTH PLAIN !!!notbase64!!!"), 501, "5.5.2")
        self.assertEqual(send_cmd(s, "AUTH LOGIN")[0], 334)
        self.assertReply(send_cmd(s, "%%%%"), 501, "5.5.2")
        s.close()

    def test_response_limit(self):
        s = self.sess(src())
        self.assertEqual(send_cmd(s, "AUTH PLAIN")[0], 334)
        # 12288 octets of base64: accepted as a response, wrong password.
        resp = base64.b64encode(b"\0alice\0" + b"x" * (9216 - 7))
        self.assertEqual(len(resp), 12288)
        self.assertEqual(send_cmd(s, resp, )[0], 535)
        self.assertEqual(send_cmd(s, "AUTH PLAIN")[0], 334)
        self.assertReply(send_cmd(s, "A" * 12292), 500, "5.5.6")
        self.assertReply(send_cmd(s, "NOOP"), 250, "2.0.0")
        s.close()

    def test_starttls_required(self):
        s = self.sess(src(), kind="starttls")
        self.assertEqual(send_cmd(s, "AUTH PLAIN " + plain_b64("alice", "alice-pw")),
                         (530, "5.7.0 Must issue a STARTTLS command first"))
        self.assertEqual(send_cmd(s, "AUTH LOGIN"),
                         (530, "5.7.0 Must issue a STARTTLS command first"))
        s.close()

    def test_twice_and_in_transaction(self):
        s = self.sess()
        self.assertReply(send_cmd(s, "AUTH PLAIN " + plain_b64("alice", "alice-pw")),
                         235, "2.7.0")
        self.assertReply(send_cmd(s, "AUTH PLAIN " + plain_b64("alice", "alice-pw")),
                         503, "5.5.1")
        self.assertReply(send_cmd(s, "MAIL FROM:<alice@own-domain.com>"), 250, "2.1.0")
        self.assertReply(send_cmd(s, "AUTH LOGIN"), 503, "5.5.1")
        s.close()

    def test_unknown_mechanism(self):
        s = self.sess(src())
        self.assertReply(send_cmd(s, "AUTH CRAM-MD5"), 504, "5.5.4")
        self.assertReply(send_cmd(s, "AUTH"), 501, "5.5")
        s.close()

    def test_wrong_credentials(self):
        s = self.sess(src())
        want = (535, "5.7.8 Authentication credentials invalid")
        self.assertEqual(send_cmd(s, "AUTH PLAIN " + plain_b64("alice", "wrong")), want)
        self.assertEqual(send_cmd(s, "AUTH PLAIN " + plain_b64("nobody", "wrong")), want)
        self.assertEqual(send_cmd(s, "AUTH PLAIN " + plain_b64("alice", "alice-pw", "bob")),
                         want)
        self.assertEqual(send_cmd(s, "AUTH LOGIN")[0], 334)
        self.assertEqual(send_cmd(s, b64("alice"))[0], 334)
        self.assertEqual(send_cmd(s, b64("bob-pw")), want)
        # Another account's password is not this one's.
        self.assertEqual(send_cmd(s, "AUTH PLAIN " + plain_b64("bob", "alice-pw")), want)
        s.close()

    def test_mail_requires_auth_after_failure(self):
        s = self.sess(src())
        self.assertEqual(send_cmd(s, "AUTH PLAIN " + plain_b64("alice", "nope"))[0], 535)
        self.assertEqual(send_cmd(s, "MAIL FROM:<alice@own-domain.com>"),
                         (530, "5.7.0 Authentication required"))
        s.close()

    def test_failure_delay(self):
        s = self.sess(src())
        times = []
        for i in range(4):
            t = time.monotonic()
            code, text = send_cmd(s, "AUTH PLAIN " + plain_b64("alice", f"bad{i}"), )
            times.append(time.monotonic() - t)
            self.assertEqual(code, 535, text)
        # Doubling from 1 s (1, 2, 4 s), capped at auth_delay_max = 4 s.
        self.assertLess(times[0], 2.0, times)
        self.assertGreater(times[1], times[0] + 0.5, times)
        self.assertGreater(times[2], times[0] + 0.5, times)
        for t, lo, hi in zip(times, (0.0, 1.6, 3.2, 3.2), (2.0, 3.0, 5.0, 5.0)):
            self.assertTrue(lo <= t <= hi, f"failure delays {times}")
        # Per address: another address is not slowed down by this one.
        s2 = self.sess(src())
        t = time.monotonic()
        self.assertEqual(send_cmd(s2, "AUTH PLAIN " + plain_b64("alice", "bad"))[0], 535)
        self.assertLess(time.monotonic() - t, times[1] - 0.3)
        s.close()
        s2.close()

    def test_failure_log_line(self):
        secret = "Sup3rSecretWr0ng"
        s = self.sess("127.0.0.1")
        self.assertEqual(send_cmd(s, "AUTH PLAIN " + plain_b64("mallory", secret))[0], 535)
        self.assertEqual(send_cmd(s, "AUTH LOGIN")[0], 334)
        self.assertEqual(send_cmd(s, b64("alice"))[0], 334)
        self.assertEqual(send_cmd(s, b64(secret + "2"))[0], 535)
        s.close()
        time.sleep(0.3)
        log = self.h.logtext()
        lines = [ln for ln in log.splitlines()
                 if 'auth_failed client=127.0.0.1 user="mallory"' in ln]
        self.assertEqual(len(lines), 1, log[-2000:])
        self.assertTrue([ln for ln in log.splitlines()
                         if 'auth_failed client=127.0.0.1 user="alice"' in ln], log[-2000:])
        self.assertNotIn(secret, log)
        self.assertNotIn(b64(secret + "2"), log)
        self.assertNotIn(plain_b64("mallory", secret), log)

    def test_success_not_logged_with_password(self):
        s = self.sess()
        self.assertEqual(send_cmd(s, "AUTH PLAIN " + plain_b64("alice", "alice-pw"))[0], 235)
        code, text = transaction(s, message(subject="after auth"))
        self.assertEqual(code, 250, text)
        s.close()
        time.sleep(0.2)
        self.assertNotIn("alice-pw", self.h.logtext())
        self.assertNotIn(plain_b64("alice", "alice-pw"), self.h.logtext())


class AuthOffer(unittest.TestCase):
    def test_not_offered_without_tls(self):
        h = Relayd(sections={"listen plain": {"insecure_auth": "no"}})
        try:
            h.start()
            s, _ = h.raw("plain")
            code, text = send_cmd(s, "EHLO client.test")
            self.assertEqual(code, 250)
            self.assertFalse([k for k in text.upper().split("\n") if k.startswith("AUTH")], text)
            # No TLS on this listener at all, so no STARTTLS either.
            self.assertNotIn("STARTTLS", text.upper().split("\n"))
            # The spec leaves the reply open on a listener that has no
            # TLS at all: 530 5.7.0 or 503 5.5.1, never a login.
            code, text = send_cmd(s, "AUTH PLAIN " + plain_b64("alice", "alice-pw"))
            self.assertIn((code, text[:5]), ((530, "5.7.0"), (503, "5.5.1")), text)
            s.close()
        finally:
            h.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
