"""Spool, queue and capture delivery: durable commits, restart recovery,
quarantine, crash safety (kill -9 under load) and full-disk replies.

Run with Debian's /usr/bin/python3; see harness.py for the environment.
"""
import json
import os
import random
import re
import smtplib
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (Relayd, VERP_RE, as_submitted, message,  # noqa: E402
                     read_reply,
                     verp_decode, verp_key)

QUEUED_RE = re.compile(r"^2\.0\.0 Ok: queued as ([0-9a-f]{16})$")
ALICE = "alice@own-domain.com"


def parse_envelope(data):
    """A strict reader of the spool format (common/envelope.h), written
    apart from the C one.  Returns a dict or raises ValueError."""
    magic = b"RELAYD-SPOOL 1\n"
    if not data.startswith(magic):
        raise ValueError("magic")
    off = len(magic)
    out = {"rcpt": []}
    while True:
        start = off
        sp = data.index(b" ", off)
        tag = data[off:sp].decode()
        nl = data.index(b"\n", sp)
        num = data[sp + 1:nl]
        if not num.isdigit() or (len(num) > 1 and num[:1] == b"0"):
            raise ValueError("length")
        n = int(num)
        val = data[nl + 1:nl + 1 + n]
        if len(val) != n or data[nl + 1 + n:nl + 2 + n] != b"\n":
            raise ValueError("value")
        off = nl + 2 + n
        if tag == "end":
            if int(val) != start or off != len(data):
                raise ValueError("end")
            return out
        if tag == "rcpt":
            out["rcpt"].append(val.decode())
        else:
            out[tag] = val


def send(h, msg, rcpts=("rcpt@rcpt-domain.org",), frm=ALICE, s=None,
         mail_options=()):
    """One transaction; returns (code, text of the DATA reply)."""
    own = s is None
    if own:
        s = h.client("plain")
    try:
        code, text = s.mail(frm, list(mail_options))
        assert code == 250, (code, text)
        for r in rcpts:
            code, text = s.rcpt(r)
            assert code == 250, (code, text)
        code, text = s.data(msg)
        return code, text.decode(errors="replace")
    finally:
        if own:
            s.quit()


def queued_id(test, code, text):
    test.assertEqual(code, 250, text)
    m = QUEUED_RE.match(text)
    test.assertIsNotNone(m, text)
    return m.group(1)


RECYCLED_RE = re.compile(r"r\.[0-9a-f]{1,8}")


def tmp_names(h):
    """tmp/'s names, split into (recycled r.N files, anything else)."""
    names = sorted(os.listdir(f"{h.spool}/tmp"))
    return ([n for n in names if RECYCLED_RE.fullmatch(n)],
            [n for n in names if not RECYCLED_RE.fullmatch(n)])


def wait_for(pred, timeout=10, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


class CaptureTest(unittest.TestCase):
    """(1) A submitted message is captured byte for byte."""

    def setUp(self):
        self.h = Relayd(mode="capture")
        self.h.start()

    def tearDown(self):
        self.h.cleanup()

    def test_capture_exact_bytes_and_json(self):
        h = self.h
        msg = message(subject="capture one",
                      body=b"Line one.\r\n.leading dot\r\n\r\nend\r\n")
        code, text = send(h, msg, rcpts=("one@rcpt-domain.org",
                                         "two@other-domain.net"))
        qid = queued_id(self, code, text)
        got = h.captured(wait=10, want=1)
        self.assertEqual(len(got), 1)
        js, eml = got[0]
        self.assertEqual(as_submitted(eml), msg)
        # Each recipient has its own aligned VERP sender naming this
        # message and that recipient.
        key = verp_key(f"{h.dir}/secret")
        senders = [r["mail_from"] for r in js["recipients"]]
        for i, snd in enumerate(senders):
            self.assertRegex(snd, VERP_RE)
            self.assertEqual(verp_decode(key, snd.split("@")[0]), (qid, i))
        want = {"id": qid, "recipients": [
            {"rcpt": "one@rcpt-domain.org", "mail_from": senders[0]},
            {"rcpt": "two@other-domain.net", "mail_from": senders[1]}]}
        self.assertEqual(js, want)
        raw = open(f"{h.capture}/{qid}.json", "rb").read()
        self.assertEqual(raw, json.dumps(want, ensure_ascii=False).encode())
        self.assertTrue(wait_for(lambda: h.spool_files() == [], 10),
                        h.spool_files())
        self.assertEqual(sorted(os.listdir(h.capture)),
                         [f"{qid}.eml", f"{qid}.json"])
        # The captured message's spool file waits in tmp/ for reuse.
        self.assertEqual(tmp_names(h), (["r.0"], []))
        self.assertEqual(os.stat(h.spool).st_mode & 0o777, 0o700)
        self.assertEqual(os.stat(h.capture).st_mode & 0o777, 0o700)
        self.assertRegex(h.logtext(),
                         rf"{qid} captured nrcpt=2 size={len(eml)}\b")

    def test_json_escaping_and_utf8(self):
        h = self.h
        s = h.client("plain")
        s.command_encoding = "utf-8"
        self.assertEqual(s.mail(ALICE, ["SMTPUTF8"])[0], 250)
        rcpts = ["j\u00f6hn@rcpt-domain.org", '"a\\"b c"@rcpt-domain.org']
        for r in rcpts:
            self.assertEqual(s.rcpt(r), (250, b"2.1.5 Ok"))
        msg = message(subject="utf8")
        code, text = s.data(msg)
        qid = queued_id(self, code, text.decode())
        s.quit()
        got = h.captured(wait=10, want=1)
        self.assertEqual(len(got), 1)
        senders = [r["mail_from"] for r in got[0][0]["recipients"]]
        self.assertEqual(len(set(senders)), 2)
        want = {"id": qid, "recipients": [
            {"rcpt": r, "mail_from": m} for r, m in zip(rcpts, senders)]}
        raw = open(f"{h.capture}/{qid}.json", "rb").read()
        self.assertEqual(raw, json.dumps(want, ensure_ascii=False).encode())
        self.assertIn(b'"j\xc3\xb6hn@rcpt-domain.org"', raw)
        self.assertIn(b'"\\"a\\\\\\"b c\\"@rcpt-domain.org"', raw)
        self.assertEqual(as_submitted(got[0][1]), msg)

    def test_spool_files_are_recycled(self):
        """A removed message's spool file is kept as tmp/r.N and the next
        commit overwrites it, cut to the new length: the same inode, the
        exact bytes of the new message, none of the old one."""
        h = self.h
        big = message(subject="big", body=b"B" * 70 + b"\r\n" +
                      (b"x" * 76 + b"\r\n") * 400)
        qid1 = queued_id(self, *send(h, big))
        self.assertEqual(len(h.captured(wait=10, want=1)), 1)
        self.assertTrue(wait_for(lambda: h.spool_files() == [], 10))
        self.assertEqual(tmp_names(h), (["r.0"], []))
        st = os.stat(f"{h.spool}/tmp/r.0")
        self.assertGreater(st.st_size, 400 * 78)
        small = message(subject="small", body=b"short\r\n")
        qid2 = queued_id(self, *send(h, small))
        got = h.captured(wait=10, want=2)
        self.assertEqual({j["id"]: as_submitted(e) for j, e in got},
                         {qid1: big, qid2: small})
        self.assertTrue(wait_for(lambda: h.spool_files() == [], 10))
        self.assertEqual(tmp_names(h), (["r.1"], []))
        st2 = os.stat(f"{h.spool}/tmp/r.1")
        self.assertEqual(st2.st_ino, st.st_ino)
        self.assertLess(st2.st_size, 2000)
        data = open(f"{h.spool}/tmp/r.1", "rb").read()
        env = parse_envelope(data)
        self.assertEqual(env["id"], qid2.encode())
        self.assertNotIn(b"x" * 76, data)

    def test_client_gone_after_the_dot(self):
        """24 clients send a whole message (signed with RSA and Ed25519 by
        the default configuration) and reset the connection right after
        the final dot, while relayd signs and commits it.  Each such
        message is then captured complete or not at all (seen: the
        signing job finds its client gone and commits nothing, or the
        commit ends with nobody to tell; most are captured); relayd goes on
        (the next message gets its 250 and is captured) and stops cleanly:
        exit status 0, no sanitizer report in its log."""
        import socket
        import struct
        h = self.h
        gone = {}
        for i in range(24):
            msg = message(subject=f"gone {i}", body=f"n={i}\r\n".encode())
            gone[f"gone {i}"] = msg
            s = h.session()
            s.sendall(b"MAIL FROM:<alice@own-domain.com>\r\n"
                      b"RCPT TO:<rcpt@rcpt-domain.org>\r\nDATA\r\n")
            for want in (250, 250, 354):
                self.assertEqual(read_reply(s)[0], want)
            s.sendall(msg + b".\r\n")
            # 0 to 7 ms: before, during and after the signature and the
            # commit, so that some are captured and some are not.
            time.sleep(i * 0.0003)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         struct.pack("ii", 1, 0))
            s.close()                           # RST, no 250 read
        last = message(subject="after them", body=b"still here\r\n")
        qid = queued_id(self, *send(h, last))
        self.assertTrue(wait_for(lambda: h.spool_files() == [], 20))
        got = h.captured(wait=10, want=1)
        by_subject = {}
        for j, e in got:
            subj = re.search(rb"(?m)^Subject: (.*)\r$", e).group(1).decode()
            by_subject.setdefault(subj, []).append((j, e))
        self.assertEqual([j["id"] for j, _ in by_subject["after them"]],
                         [qid])
        self.assertEqual(as_submitted(by_subject["after them"][0][1]), last)
        for subj, msg in gone.items():
            copies = by_subject.get(subj, [])
            self.assertLessEqual(len(copies), 1, subj)
            for _, e in copies:
                self.assertEqual(as_submitted(e), msg)
        self.assertEqual(set(by_subject) - set(gone), {"after them"})
        h.stop()
        self.assertEqual(h.proc.returncode, 0)
        self.assertNotIn("Sanitizer", h.logtext())
        self.assertNotIn("runtime error", h.logtext())

    def test_many_messages_in_one_session(self):
        h = self.h
        s = h.client("plain")
        sent = {}
        for i in range(30):
            msg = message(subject=f"batch {i}", body=f"n={i}\r\n".encode())
            code, text = send(h, msg, s=s)
            sent[queued_id(self, code, text)] = msg
        s.quit()
        got = h.captured(wait=15, want=len(sent))
        self.assertEqual({j["id"]: as_submitted(e) for j, e in got}, sent)
        self.assertTrue(wait_for(lambda: h.spool_files() == [], 10))


class EightBitFlagTest(unittest.TestCase):
    """8-bit content is recorded as 8-bit (envelope flags 1) even when the
    client did not say BODY=8BITMIME, so delivery never sends it to a
    server without 8BITMIME; 7-bit content is not."""

    def setUp(self):
        self.h = Relayd(sections={"queue": {"hold": "yes"}})
        self.h.start()

    def tearDown(self):
        self.h.cleanup()

    def test_flags(self):
        h = self.h
        s = h.client("plain")
        want = {}
        for body, flags in ((b"plain ascii\r\n", b"0"),
                            ("caf\u00e9 cr\u00e8me\r\n".encode(), b"1")):
            code, text = send(h, message(subject="8bit", body=body), s=s)
            want[queued_id(self, code, text)] = flags
        code, text = send(h, message(subject="declared"), s=s,
                          mail_options=["BODY=8BITMIME"])
        want[queued_id(self, code, text)] = b"1"
        s.quit()
        for qid, flags in want.items():
            env = parse_envelope(open(f"{h.spool}/queue/{qid}", "rb").read())
            self.assertEqual(env["flags"], flags, qid)


class RecoveryTest(unittest.TestCase):
    """(2) Restart recovery, quarantine and tmp/ cleanup."""

    def setUp(self):
        self.h = Relayd(sections={"queue": {"hold": "yes"}})

    def tearDown(self):
        self.h.cleanup()

    def test_restart_recovers_and_quarantines(self):
        h = self.h
        h.start()
        sent = {}
        s = h.client("plain")
        for i in range(5):
            msg = message(subject=f"keep {i}", body=f"body {i}\r\n".encode())
            code, text = send(h, msg, s=s)
            sent[queued_id(self, code, text)] = msg
        s.quit()
        self.assertEqual(h.spool_files(), sorted(sent))
        for qid in sent:
            self.assertEqual(h.logtext().count(
                f"{qid} held reason=\"queue hold\""), 1)
        h.kill9()

        q = f"{h.spool}/queue"
        good = open(f"{q}/{min(sent)}", "rb").read()
        open(f"{q}/0000000000000001", "wb").write(good[:len(good) - 3])
        open(f"{q}/0000000000000002", "wb").write(b"garbage\n")
        open(f"{q}/0000000000000003", "wb").write(
            good.replace(min(sent).encode(), b"0000000000000099"))
        open(f"{h.spool}/tmp/{min(sent)}", "wb").write(good[:40])
        open(f"{h.spool}/tmp/r.7", "wb").write(good[:40])
        open(f"{h.spool}/tmp/r.ab", "wb").write(b"old")
        open(f"{h.spool}/tmp/r.AB", "wb").write(b"not ours")
        open(f"{h.spool}/tmp/r.123456789", "wb").write(b"not ours")
        h.start()
        self.assertTrue(wait_for(
            lambda: "0000000000000003 quarantined" in h.logtext(), 10),
            h.tail())
        self.assertEqual(h.spool_files(), sorted(sent))
        # Unfinished commits are deleted; recycled files are kept.
        self.assertEqual(tmp_names(h), (["r.7", "r.ab"], []))
        self.assertEqual(open(f"{h.spool}/tmp/r.ab", "rb").read(), b"old")
        self.assertEqual(sorted(os.listdir(f"{h.spool}/quarantine")),
                         ["0000000000000001", "0000000000000002",
                          "0000000000000003"])
        log = h.logtext()
        self.assertIn("0000000000000001 quarantined reason=unparsable", log)
        self.assertIn("0000000000000002 quarantined reason=unparsable", log)
        self.assertIn("0000000000000003 quarantined reason=id-mismatch", log)
        self.assertIn(f"{min(sent)} tmp_deleted", log)
        self.assertIn('- tmp_deleted file="r.AB"', log)
        self.assertIn('- tmp_deleted file="r.123456789"', log)
        self.assertNotIn('file="r.7"', log)
        for qid, msg in sent.items():
            env = parse_envelope(open(f"{q}/{qid}", "rb").read())
            self.assertEqual(env["id"], qid.encode())
            self.assertEqual(as_submitted(env["body"]), msg)
            self.assertEqual(env["from"], ALICE.encode())
            self.assertEqual(env["rcpt"], ["rcpt@rcpt-domain.org"])
        h.stop()

        # In capture mode exactly the good ones come out, nothing else.
        text = open(h.conf).read().replace("hold = yes", "hold = no")
        open(h.conf, "w").write(text)
        h.start()
        got = h.captured(wait=15, want=len(sent))
        self.assertEqual({j["id"]: as_submitted(e) for j, e in got}, sent)
        self.assertTrue(wait_for(lambda: h.spool_files() == [], 10))
        self.assertEqual(len(os.listdir(h.capture)), 2 * len(sent))


class CrashTest(unittest.TestCase):
    """(3) kill -9 under load: every 250 is captured exactly once and
    complete; nothing captured is partial."""

    THREADS = 4
    ROUNDS = 3

    def setUp(self):
        self.h = Relayd(mode="capture")

    def tearDown(self):
        self.h.cleanup()

    def load(self, acked, sent, stop, tno, rnd):
        h = self.h
        n = 0
        while not stop.is_set() and n < 100000:
            try:
                s = h.client("plain", timeout=5)
            except (OSError, smtplib.SMTPException):
                return
            try:
                while not stop.is_set():
                    n += 1
                    size = 100 + (n * 7919 + tno * 104729) % 6000
                    msg = message(subject=f"r{rnd} t{tno} n{n}",
                                  body=(b"x" * 70 + b"\r\n") * (size // 72))
                    sent[f"r{rnd} t{tno} n{n}"] = msg
                    code, text = send(h, msg, s=s)
                    if code == 250:
                        m = QUEUED_RE.match(text)
                        acked[m.group(1)] = msg
            except (OSError, smtplib.SMTPException, AssertionError):
                return

    def test_kill9_under_load(self):
        h = self.h
        acked, sent = {}, {}
        rng = random.Random(os.getpid())
        for rnd in range(self.ROUNDS):
            h.start()
            stop = threading.Event()
            ts = [threading.Thread(target=self.load,
                                   args=(acked, sent, stop, t, rnd))
                  for t in range(self.THREADS)]
            for t in ts:
                t.start()
            time.sleep(0.3 + rng.random() * 1.2)
            h.kill9()
            stop.set()
            for t in ts:
                t.join(30)
                self.assertFalse(t.is_alive())
            h.stop()
        self.assertGreater(len(acked), 0)
        h.start()
        self.assertTrue(wait_for(lambda: h.spool_files() == [], 30),
                        h.spool_files())
        names = os.listdir(h.capture)
        self.assertEqual([n for n in names if not re.fullmatch(
            r"[0-9a-f]{16}\.(eml|json)", n)], [])
        ids = {n[:-5] for n in names if n.endswith(".json")}
        self.assertEqual(ids, {n[:-4] for n in names if n.endswith(".eml")})
        missing = set(acked) - ids
        self.assertEqual(missing, set())
        by_bytes = {m: k for k, m in sent.items()}
        seen_keys = {}
        for qid in ids:
            eml = as_submitted(open(f"{h.capture}/{qid}.eml", "rb").read())
            js = json.load(open(f"{h.capture}/{qid}.json"))
            self.assertEqual(js["id"], qid)
            self.assertIn(eml, by_bytes, f"{qid} is partial or unknown")
            if qid in acked:
                self.assertEqual(eml, acked[qid])
            # Exactly once: no message captured under two IDs... except
            # one that got its 250 lost in the kill and was resent?  We
            # never resend, so every message appears at most once.
            key = by_bytes[eml]
            self.assertNotIn(key, seen_keys, f"{qid} and {seen_keys.get(key)}")
            seen_keys[key] = qid
        print(f"\n# crash test: {len(acked)} acknowledged, {len(ids)} "
              f"captured, {self.ROUNDS} kills", file=sys.stderr)


class FullDiskTest(unittest.TestCase):
    """(4) 451 4.3.0 when the spool cannot be written, 452 4.3.1 at MAIL
    when free space is under 1.5 x message_size.  Needs root (tmpfs)."""

    def setUp(self):
        self.mounted = False
        if os.geteuid() != 0:
            self.skipTest("needs root to mount a small tmpfs as the spool")
        self.h = Relayd(sections={"queue": {"hold": "yes"},
                                  "limits": {"message_size": "64k",
                                             "header_size": "16k"}})
        os.makedirs(self.h.spool)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700",
                            "tmpfs", self.h.spool], capture_output=True)
        if r.returncode != 0:
            self.h.cleanup()
            self.skipTest("cannot mount tmpfs: " + r.stderr.decode().strip())
        self.mounted = True

    def tearDown(self):
        self.h.stop()
        if self.mounted:
            subprocess.run(["umount", self.h.spool])
        self.h.cleanup()

    def free(self):
        st = os.statvfs(self.h.spool)
        return st.f_bavail * st.f_frsize

    def fill(self, leave):
        """Fill the spool's file system up to leave bytes free."""
        path = f"{self.h.spool}/filler"
        with open(path, "ab") as f:
            for _ in range(10000):
                if self.free() <= leave:
                    break
                try:
                    f.write(b"\0" * min(4096, self.free() - leave))
                    f.flush()
                except OSError:
                    break

    def test_full_disk_replies(self):
        h = self.h
        h.start()
        s = h.client("plain")
        self.assertEqual(s.mail(ALICE)[0], 250)
        self.assertEqual(s.rcpt("rcpt@rcpt-domain.org")[0], 250)
        # The disk fills up while the message is being sent.
        self.fill(8192)
        msg = message(subject="too big now", body=(b"y" * 78 + b"\r\n") * 500)
        code, text = s.data(msg)
        self.assertEqual((code, text.decode()),
                         (451, "4.3.0 Error: queue file write error"))
        self.assertEqual(h.spool_files(), [])
        self.assertEqual(tmp_names(h), ([], []))
        # The free-space figure is at most a second old.
        time.sleep(1.2)
        code, text = s.mail(ALICE)
        self.assertEqual((code, text.decode()),
                         (452, "4.3.1 Insufficient system storage"))
        s.rset()
        os.unlink(f"{h.spool}/filler")
        time.sleep(1.2)
        code, text = send(h, msg, s=s)
        qid = queued_id(self, code, text)
        self.assertEqual(h.spool_files(), [qid])
        s.quit()


if __name__ == "__main__":
    harness.main()
