"""relayd -t on good and bad configurations, and relayctl's offline
commands (passwd, -V, usage errors).

Every bad configuration must exit 1 and name FILE:LINE, section and key.
Run with Debian's /usr/bin/python3; meson sets RELAYD and RELAYCTL.
"""
import crypt
import os
import subprocess
import unittest

from harness import RELAYCTL, RELAYD, Relayd, main, make_dkim_key, sh


def line_of(path, text):
    """1-based number of the first line of path that starts with text."""
    with open(path) as f:
        for n, ln in enumerate(f, 1):
            if ln.startswith(text):
                return n
    raise AssertionError(f"{text!r} not in {path}")


def check(h):
    return subprocess.run([RELAYD, "-c", h.conf, "-t"], capture_output=True,
                          text=True, timeout=60)


def relayctl(*args, stdin=""):
    return subprocess.run([RELAYCTL, *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


class ConfigCheck(unittest.TestCase):
    def setUp(self):
        self.hs = []

    def tearDown(self):
        for h in self.hs:
            h.cleanup()

    def harness(self, **kw):
        h = Relayd(**kw)
        self.hs.append(h)
        return h

    def assertBad(self, h, want):
        r = check(h)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(want, r.stderr)
        return r

    def test_good(self):
        h = self.harness()
        r = check(h)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("warning", r.stderr)

    def test_bad_value(self):
        h = self.harness(sections={"limits": {"recipients": "0"}})
        n = line_of(h.conf, "recipients = 0")
        self.assertBad(h, f"{h.conf}:{n}: [limits] recipients: \"0\": "
                       "expected a whole number 1..100000")

    def test_bad_value_out_of_range_size(self):
        h = self.harness(sections={"limits": {"message_size": "3g"}})
        n = line_of(h.conf, "message_size = 3g")
        self.assertBad(h, f"{h.conf}:{n}: [limits] message_size: \"3g\": "
                       "expected a size")

    def test_unknown_key(self):
        h = self.harness(sections={"limits": {"recipient": "5"}})
        n = line_of(h.conf, "recipient = 5")
        self.assertBad(h, f"{h.conf}:{n}: [limits] recipient: unknown key")

    def test_unknown_section(self):
        h = self.harness(raw_extra="[limit]\nrecipients = 5\n")
        n = line_of(h.conf, "[limit]")
        self.assertBad(h, f"{h.conf}:{n}: [limit]: unknown section")

    def test_repeated_key(self):
        h = self.harness(sections={"limits": {"recipients": ["5", "6"]}})
        n = line_of(h.conf, "recipients = 6")
        self.assertBad(h, f"{h.conf}:{n}: [limits] recipients: repeated "
                       f"(first on line {n - 1})")

    def test_long_line(self):
        h = self.harness(sections={"relayd": {"user": "u" * 250}})
        n = line_of(h.conf, "user = uuu")
        self.assertBad(h, f"{h.conf}:{n}: line longer than 199 octets")

    def test_several_problems_all_reported(self):
        h = self.harness(sections={"limits": {"recipients": "0",
                                              "line_length": "2000"}})
        r = self.assertBad(h, f"{h.conf}:{line_of(h.conf, 'recipients')}:")
        self.assertIn(f"{h.conf}:{line_of(h.conf, 'line_length')}: "
                      "[limits] line_length: \"2000\"", r.stderr)

    def test_missing_certificate(self):
        h = self.harness(sections={"tls": {"certificate": "/nonexistent/c.pem"}})
        n = line_of(h.conf, "certificate = ")
        r = self.assertBad(h, f"{h.conf}:{n}: [tls] certificate: tls: "
                           "cannot load certificate chain /nonexistent/c.pem")
        # OpenSSL's own reason follows.
        self.assertIn("No such file", r.stderr)

    def test_key_not_matching(self):
        h = self.harness()
        sh(f"openssl genpkey -algorithm ed25519 -out {h.dir}/other.key "
           "2>/dev/null")
        os.chmod(f"{h.dir}/other.key", 0o600)
        with open(h.conf) as f:
            text = f.read().replace(f"key = {h.dir}/tls.key",
                                    f"key = {h.dir}/other.key")
        with open(h.conf, "w") as f:
            f.write(text)
        n = line_of(h.conf, "key = ")
        self.assertBad(h, f"{h.conf}:{n}: [tls] key: tls: private key does "
                       "not match certificate")

    def test_misaligned_bounce_domain(self):
        h = self.harness(sections={"domain own-domain.com":
                                   {"bounce_domain": "bounces.other.org"}})
        n = line_of(h.conf, "bounce_domain = bounces.other.org")
        self.assertBad(h, f"{h.conf}:{n}: [domain own-domain.com] "
                       "bounce_domain: bounces.other.org does not share the "
                       "organizational domain own-domain.com")

    def test_daemon_refuses_misaligned_bounce_domain(self):
        # Not only -t: the daemon itself refuses to start with it.
        h = self.harness(sections={"domain own-domain.com":
                                   {"bounce_domain": "bounces.other.org"}})
        n = line_of(h.conf, "bounce_domain = bounces.other.org")
        r = subprocess.run([RELAYD, "-c", h.conf], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(f"{h.conf}:{n}: [domain own-domain.com] bounce_domain: "
                      "bounces.other.org does not share the organizational "
                      "domain own-domain.com", r.stderr)

    def test_aligned_deeper_bounce_domain(self):
        h = self.harness(sections={"domain own-domain.com":
                                   {"bounce_domain": "b.mail.own-domain.com"}})
        r = check(h)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_domain_without_key(self):
        h = self.harness(raw_extra="[domain third.org]\n")
        n = line_of(h.conf, "[domain third.org]")
        self.assertBad(h, f"{h.conf}:{n}: [domain third.org] dkim: missing; "
                       "every sending domain needs at least one "
                       "SELECTOR:KEYFILE")

    def test_public_suffix_domain(self):
        h = self.harness()
        sel, key = make_dkim_key(h.dir, "co.uk")
        with open(h.conf, "a") as f:
            f.write(f"[domain co.uk]\ndkim = {sel}:{key}\n")
        n = line_of(h.conf, "[domain co.uk]")
        self.assertBad(h, f"{h.conf}:{n}: [domain co.uk] bounce_domain: "
                       "co.uk is a public suffix")

    def test_plain_text_password(self):
        h = self.harness()
        with open(f"{h.dir}/users", "w") as f:
            f.write("# accounts\nalice:alice-pw:own-domain.com\n")
        r = self.assertBad(h, f"{h.dir}/users:2: alice: password hash "
                           "missing, plain text or of an unsupported kind")
        self.assertNotIn("alice-pw", r.stderr)
        n = line_of(h.conf, "file = ")
        self.assertIn(f"{h.conf}:{n}: [users] file: {h.dir}/users: 1 problem",
                      r.stderr)

    def test_short_secret(self):
        h = self.harness()
        with open(f"{h.dir}/secret", "wb") as f:
            f.write(b"x" * 31)
        n = line_of(h.conf, "secret_file = ")
        self.assertBad(h, f"{h.conf}:{n}: [relayd] secret_file: "
                       f"{h.dir}/secret holds 31 bytes; at least 32")

    def test_dkim_keys(self):
        h = self.harness()
        d = h.dir
        sh(f"openssl genpkey -algorithm ed25519 -out {d}/ed.pem 2>/dev/null")
        sh(f"openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:2048 "
           f"-out {d}/rsa.pem 2>/dev/null")
        os.chmod(f"{d}/ed.pem", 0o600)
        os.chmod(f"{d}/rsa.pem", 0o644)
        with open(f"{d}/bad.pem", "w") as f:
            f.write("not a key\n")
        with open(h.conf, "a") as f:
            f.write(f"[domain third.example.org]\n"
                    f"dkim = e1:{d}/ed.pem\n"
                    f"dkim = r1:{d}/rsa.pem\n")
        r = check(h)
        self.assertEqual(r.returncode, 0, r.stderr)
        n = line_of(h.conf, "dkim = r1:")
        self.assertIn(f"{h.conf}:{n}: [domain third.example.org] dkim: "
                      f"warning: {d}/rsa.pem is readable by group or others",
                      r.stderr)
        with open(h.conf, "a") as f:
            f.write(f"dkim = b1:{d}/bad.pem\ndkim = m1:{d}/missing.pem\n")
        r = self.assertBad(h, f"{h.conf}:{line_of(h.conf, 'dkim = b1:')}: "
                           f"[domain third.example.org] dkim: {d}/bad.pem: "
                           "not a PEM private key")
        self.assertIn(f"{h.conf}:{line_of(h.conf, 'dkim = m1:')}: "
                      f"[domain third.example.org] dkim: {d}/missing.pem: "
                      "No such file or directory", r.stderr)

    def test_weak_rsa_key(self):
        h = self.harness()
        d = h.dir
        sh(f"openssl genpkey -algorithm rsa -pkeyopt rsa_keygen_bits:1024 "
           f"-out {d}/weak.pem 2>/dev/null")
        os.chmod(f"{d}/weak.pem", 0o600)
        with open(h.conf, "a") as f:
            f.write(f"[domain third.example.org]\ndkim = w:{d}/weak.pem\n")
        self.assertBad(h, f"{h.conf}:{line_of(h.conf, 'dkim = w:')}: "
                       f"[domain third.example.org] dkim: {d}/weak.pem: RSA "
                       "key of 1024 bits; at least 2048 needed")
        with open(h.conf, "a") as f:
            f.write("allow_weak_key = yes\n")
        r = check(h)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_spool_parent_missing(self):
        h = self.harness(sections={"relayd": {"spool": "/nonexistent/x/spool"}})
        n = line_of(h.conf, "spool = ")
        self.assertBad(h, f"{h.conf}:{n}: [relayd] spool: parent directory "
                       "/nonexistent/x of /nonexistent/x/spool does not exist")

    def test_no_listener(self):
        h = self.harness(sections={"listen submission": {"address": None}})
        n = line_of(h.conf, "[listen submission]")
        self.assertBad(h, f"{h.conf}:{n}: [listen submission] address: "
                       "missing; each listener needs at least one")

    def test_missing_file(self):
        r = subprocess.run([RELAYD, "-c", "/nonexistent/relayd.conf", "-t"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/relayd.conf: cannot open: No such file",
                      r.stderr)


class Relayctl(unittest.TestCase):
    def test_passwd(self):
        r = relayctl("passwd", stdin="s3cret pass\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        h = r.stdout
        self.assertTrue(h.startswith("$y$"), h)
        self.assertTrue(h.endswith("\n") and h.count("\n") == 1, h)
        h = h.rstrip("\n")
        self.assertEqual(crypt.crypt("s3cret pass", h), h)
        self.assertNotEqual(crypt.crypt("s3cret pass\n", h), h)

    def test_passwd_without_newline_and_salted(self):
        a = relayctl("passwd", stdin="pw")
        b = relayctl("passwd", stdin="pw\n")
        self.assertEqual((a.returncode, b.returncode), (0, 0))
        self.assertNotEqual(a.stdout, b.stdout)    # a fresh salt each time
        for out in (a.stdout, b.stdout):
            self.assertEqual(crypt.crypt("pw", out.strip()), out.strip())

    def test_passwd_hash_accepted_by_relayd(self):
        hsh = relayctl("passwd", stdin="carol-pw\n").stdout.strip()
        h = Relayd()
        try:
            with open(f"{h.dir}/users", "a") as f:
                f.write(f"carol:{hsh}:own-domain.com\n")
            r = check(h)
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            h.cleanup()

    def test_passwd_empty(self):
        r = relayctl("passwd", stdin="\n")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertIn("empty password refused", r.stderr)

    def test_version(self):
        r = relayctl("-V")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^relayctl \d+\.\d+\.\d+\n$")

    def test_usage_errors(self):
        for args in ([], ["-x"], ["frobnicate"], ["passwd", "extra"]):
            r = relayctl(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("usage: relayctl", r.stderr)
            self.assertEqual(r.stdout, "")

    def test_not_yet(self):
        r = relayctl("-c", "/dev/null", "queue")
        self.assertEqual(r.returncode, 2)
        self.assertIn("relayctl: queue: not implemented yet", r.stderr)


if __name__ == "__main__":
    main()
