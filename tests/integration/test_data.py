"""Integration: DATA framing and the limits on message content.

Only CRLF.CRLF ends DATA (RFC 5321 4.1.1.4); bare CR or LF is refused
(550 5.5.2) or normalized; NUL, long lines, oversize messages, too many
Received fields and an oversize header section get their exact replies,
and after each of them the session is usable again.  The SMTP smuggling
sequences (CVE-2023-51764) never produce a second message, in both
bare_newlines modes.
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Relayd, read_reply, send_cmd, message, transaction,  # noqa: E402
                     queued_id)

LIMITS = {"message_size": "64k", "header_size": "8k"}

# The byte sequences a lenient server might take for the end of data.
SMUGGLE = [
    ("LF.LF", b"\n.\n"),
    ("LF.CRLF", b"\n.\r\n"),
    ("CR.CR", b"\r.\r"),
    ("CRLF.LF", b"\r\n.\n"),
    ("CR.LF", b"\r.\n"),
    ("CRLF.CR", b"\r\n.\r"),
    ("LF.CR", b"\n.\r"),
]
SMUGGLED = (b"MAIL FROM:<x@own-domain.com>\r\nRCPT TO:<y@rcpt-domain.org>\r\n"
            b"DATA\r\nFrom: <x@own-domain.com>\r\nSubject: smuggled\r\n\r\n"
            b"smuggled\r\n.\r\n")


def find(h, qid, wait=10):
    end = time.time() + wait
    while True:
        got = [(j, e) for j, e in h.captured(wait=0) if j["id"] == qid]
        if got or time.time() > end:
            return got
        time.sleep(0.05)


class Framing(unittest.TestCase):
    mode = "reject"

    @classmethod
    def setUpClass(cls):
        cls.h = Relayd(sections={"limits": dict(LIMITS, bare_newlines=cls.mode)})
        cls.h.start()

    @classmethod
    def tearDownClass(cls):
        cls.h.cleanup()

    def assertReply(self, got, code, text_start):
        self.assertEqual(got[0], code, got)
        self.assertTrue(got[1].startswith(text_start),
                        f"{got!r} does not start with {text_start!r}")

    def ok_after(self, s, subject="after"):
        """A following transaction on the same session succeeds."""
        code, text = transaction(s, message(subject=subject))
        self.assertEqual(code, 250, text)
        self.assertIsNotNone(queued_id(text), text)
        return queued_id(text)

    def refused(self, data, code, enh):
        """data (which must contain a Subject field from message()) is
        refused with code and enh; the session then queues another
        message, and the refused one is never captured."""
        token = f"refused-{time.time_ns()}".encode()
        data = data.replace(b"Subject: hello", b"Subject: " + token, 1)
        self.assertIn(token, data)
        s = self.h.session()
        self.assertReply(transaction(s, data), code, enh)
        qid = self.ok_after(s)
        s.close()
        self.assertEqual(len(find(self.h, qid)), 1, f"{qid} not captured")
        time.sleep(0.3)
        self.assertEqual([j["id"] for j, e in self.h.captured(wait=0) if token in e], [])


class Reject(Framing):
    mode = "reject"

    def test_bare_lf(self):
        self.refused(message(body=b"line one\nline two\r\n"), 550, "5.5.2")

    def test_bare_cr(self):
        self.refused(message(body=b"line one\rline two\r\n"), 550, "5.5.2")

    def test_nul(self):
        self.refused(message(body=b"a\0b\r\n"), 550, "5.6.0")

    def test_line_length(self):
        s = self.h.session()
        qid = None
        code, text = transaction(s, message(body=b"x" * 998 + b"\r\n"))
        self.assertEqual(code, 250, text)
        qid = queued_id(text)
        self.assertReply(transaction(s, message(body=b"x" * 999 + b"\r\n")), 550, "5.6.0")
        self.ok_after(s)
        s.close()
        got = find(self.h, qid)
        self.assertEqual(len(got), 1)
        self.assertIn(b"\r\n" + b"x" * 998 + b"\r\n", got[0][1])

    def test_message_size(self):
        body = (b"y" * 70 + b"\r\n") * 1000  # 72 kB > 64k
        self.refused(message(body=body), 552, "5.3.4")

    @staticmethod
    def received(n):
        return b"".join(b"Received: from h%d.example by relay.example; "
                        b"Sun, 22 Nov 2026 12:00:00 +0000\r\n" % i for i in range(n))

    def test_received_fields_50(self):
        s = self.h.session()
        code, text = transaction(s, self.received(50) + message())
        self.assertEqual(code, 250, text)
        s.close()

    def test_received_fields_51(self):
        self.refused(self.received(51) + message(), 554, "5.4.6")

    def test_header_size(self):
        pad = b"".join(b"X-Pad-%d: " % i + b"p" * 900 + b"\r\n" for i in range(12))
        self.refused(message(extra=pad), 552, "5.3.4")

    def test_dot_stuffing(self):
        s = self.h.session()
        code, text = transaction(s, message(body=b"..leading dot\r\n...\r\nend\r\n"))
        self.assertEqual(code, 250, text)
        s.close()
        got = find(self.h, queued_id(text))
        self.assertEqual(len(got), 1)
        self.assertTrue(got[0][1].endswith(b"\r\n.leading dot\r\n..\r\nend\r\n"), got[0][1][-80:])

    def test_exact_bytes(self):
        body = b"Line 1\r\n\tTabbed \xc3\xa9 8bit\r\n\r\nLast line\r\n"
        msg = message(subject="exact", body=body)
        s = self.h.session()
        code, text = transaction(s, msg)
        self.assertEqual(code, 250, text)
        s.close()
        got = find(self.h, queued_id(text))
        self.assertEqual(len(got), 1)
        eml = got[0][1]
        # Our bytes arrive unchanged (relayd may prepend its own fields).
        self.assertTrue(eml.endswith(msg), eml[-200:])

    def test_smuggling(self):
        for name, seq in SMUGGLE + [("DATA-start .LF", None)]:
            with self.subTest(seq=name):
                self.smuggle(name, seq)

    def smuggle(self, name, seq):
        token = f"tok{time.time_ns()}".encode()
        smuggled = SMUGGLED.replace(b"Subject: smuggled", b"Subject: smuggled " + token)
        s = self.h.session()
        for cmd in ("MAIL FROM:<alice@own-domain.com>", "RCPT TO:<rcpt@rcpt-domain.org>",
                    "DATA"):
            code, text = send_cmd(s, cmd)
            self.assertIn(code, (250, 354), text)
        if seq is None:
            payload = b".\n" + smuggled
        else:
            payload = message(subject="smuggle " + name, body=b"a") + seq + smuggled
        s.sendall(payload)
        code, text = read_reply(s, 30)
        # Whatever the verdict, the next reply is the one to QUIT: no
        # replies to smuggled commands.
        q = send_cmd(s, "QUIT")
        self.assertEqual(q[0], 221, f"{name}: after {code} {text} came {q}")
        s.close()

        def mine():
            return [(j, e) for j, e in self.h.captured(wait=0) if token in e]
        if code == 250:
            qid = queued_id(text)
            self.assertIsNotNone(qid, text)
            self.assertEqual(len(find(self.h, qid)), 1, f"{name}: {qid} not captured")
        time.sleep(0.5)
        new = mine()
        if self.mode == "reject":
            self.assertReply((code, text), 550, "5.5.2")
            self.assertEqual(new, [], name)
        elif seq is None and code != 250:
            # ".\n" at the start of data normalizes to a message without
            # a header section, which relayd may refuse: then nothing.
            self.assertEqual(code // 100, 5, f"{name}: {code} {text}")
            self.assertEqual(new, [], name)
        else:
            self.assertEqual(code, 250, f"{name}: {text}")
            self.assertEqual(len(new), 1, name)
            self.assertEqual(new[0][0]["id"], queued_id(text))
            self.assertEqual([r["rcpt"] for r in new[0][0]["recipients"]],
                             ["rcpt@rcpt-domain.org"], name)
            self.assertIn(b"MAIL FROM:<x@own-domain.com>\r\n", new[0][1])
        # And nothing ever went to the smuggled recipient.
        for j, e in self.h.captured(wait=0):
            self.assertNotIn("y@rcpt-domain.org", [r["rcpt"] for r in j["recipients"]])


class Normalize(Reject):
    mode = "normalize"

    def test_bare_lf(self):
        self.normalized(b"line one\nline two\r\n", b"line one\r\nline two\r\n")

    def test_bare_cr(self):
        self.normalized(b"line one\rline two\r\n", b"line one\r\nline two\r\n")

    def normalized(self, body, want):
        s = self.h.session()
        code, text = transaction(s, message(body=body))
        self.assertEqual(code, 250, text)
        self.ok_after(s)
        s.close()
        got = find(self.h, queued_id(text))
        self.assertEqual(len(got), 1)
        eml = got[0][1]
        self.assertTrue(eml.endswith(b"\r\n\r\n" + want), eml[-80:])
        self.assertNotIn(b"\r\r", eml)
        self.assertEqual(eml.count(b"\n"), eml.count(b"\r\n"), "bare LF in captured message")
        self.assertEqual(eml.count(b"\r"), eml.count(b"\r\n"), "bare CR in captured message")



if __name__ == "__main__":
    unittest.main(verbosity=2)
