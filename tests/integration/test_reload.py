"""SIGHUP reload (issues 2 and 4): a good configuration is taken whole, a bad
one (including a bad DKIM key) leaves the running one in place, and mail
keeps flowing, signed with the keys that were loaded."""
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import DKIM_TXT, Relayd, hash_pw, message  # noqa: E402


def dkim_results(eml):
    """[(selector, verified)] for every DKIM-Signature, keys from DKIM_TXT."""
    import dkim

    def dnsfunc(name, timeout=5):
        return DKIM_TXT.get(name.decode().rstrip("."), "").encode()

    n = len(re.findall(rb"(?im)^dkim-signature:",
                       eml.split(b"\r\n\r\n", 1)[0]))
    out = []
    for i in range(n):
        d = dkim.DKIM(eml)
        ok = d.verify(idx=i, dnsfunc=dnsfunc)
        out.append((d.signature_fields.get(b"s", b"").decode(), bool(ok)))
    return sorted(out)


def wait_log(h, text, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if text in h.logtext():
            return True
        time.sleep(0.05)
    return False


class Reload(unittest.TestCase):
    def setUp(self):
        self.h = Relayd()
        self.h.start()

    def tearDown(self):
        self.h.cleanup()

    def submit(self, subject, user="alice", frm="Alice <alice@own-domain.com>",
               mail_from="alice@own-domain.com"):
        s = self.h.client(user=user)
        try:
            s.mail(mail_from)
            s.rcpt("r@rcpt-domain.org")
            code, text = s.data(message(frm=frm, subject=subject))
        finally:
            s.close()
        return code, text.decode()

    def captured_with(self, subject, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            for j, eml in self.h.captured(wait=0):
                if f"Subject: {subject}\r\n".encode() in eml:
                    return eml
            time.sleep(0.05)
        return None

    def hup(self):
        n = self.h.logtext().count(" reload config=")
        os.kill(self.h.proc.pid, signal.SIGHUP)
        end = time.time() + 10
        while time.time() < end:
            log = self.h.logtext()
            if log.count(" reload config=") > n and (
                    log.count("reloaded sessions=") + log.count("reload_failed")
                    > n):
                return
            time.sleep(0.05)
        self.fail("no reload outcome in the log:\n" + self.h.tail())

    def test_bad_key_keeps_running_keys(self):
        code, text = self.submit("before")
        self.assertEqual(code, 250, text)
        key = f"{self.h.dir}/own-domain.com.e2026.pem"
        with open(key, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\ngarbage\n"
                    "-----END PRIVATE KEY-----\n")
        self.hup()
        self.assertIn("reload_failed", self.h.logtext())
        self.assertIn(f"[domain own-domain.com] dkim: {key}", self.h.logtext())
        code, text = self.submit("after bad reload")
        self.assertEqual(code, 250, text)
        eml = self.captured_with("after bad reload")
        self.assertIsNotNone(eml)
        self.assertEqual(dkim_results(eml), [("e2026", True), ("r2026", True)])

    def test_good_reload_takes_new_users_and_policy(self):
        # carol does not exist yet: 535.
        s = self.h.client(login=False)
        with self.assertRaises(Exception):
            s.login("carol", "carol-pw")
        s.close()
        with open(f"{self.h.dir}/users", "a") as f:
            f.write(f"carol:{hash_pw('carol-pw')}:carol@own-domain.com\n")
        conf = open(self.h.conf).read()
        conf = conf.replace("[domain own-domain.com]\n",
                            "[domain own-domain.com]\ncanonicalization = "
                            "simple/simple\n", 1)
        open(self.h.conf, "w").write(conf)
        self.hup()
        self.assertIn("reloaded sessions=", self.h.logtext())
        self.h.users["carol"] = ("carol-pw", "carol@own-domain.com")
        code, text = self.submit("carol", user="carol",
                                 frm="Carol <carol@own-domain.com>",
                                 mail_from="carol@own-domain.com")
        self.assertEqual(code, 250, text)
        eml = self.captured_with("carol")
        self.assertIn(b"c=simple/simple", eml)
        self.assertEqual(dkim_results(eml), [("e2026", True), ("r2026", True)])
        # carol owns one address, not the domain.
        code, text = self.submit("carol other", user="carol",
                                 frm="Carol <ceo@own-domain.com>",
                                 mail_from="carol@own-domain.com")
        self.assertEqual((code, text[:5]), (550, "5.7.1"))

    def test_bad_config_keeps_running_one(self):
        conf = open(self.h.conf).read()
        open(self.h.conf, "w").write(conf.replace("[limits]", "[limits]\nrecipients = many", 1)
                                     if "[limits]" in conf else conf + "\n[limits]\nrecipients = many\n")
        self.hup()
        self.assertIn("reload_failed", self.h.logtext())
        code, text = self.submit("still works")
        self.assertEqual(code, 250, text)


if __name__ == "__main__":
    harness.main()
