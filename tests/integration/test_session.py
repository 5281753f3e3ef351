"""Integration: the SMTP session of relayd (RFC 5321) on a real daemon.

Banner, EHLO keywords, the transaction's order and syntax errors with their
exact replies, PIPELINING (RFC 2920), command line limits and bounded
memory, the soft and hard error limits, timeouts, and the connection
limits.  Run by meson (suite integration) with Debian's /usr/bin/python3.
"""
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Relayd, read_reply, send_cmd, is_closed, message,  # noqa: E402
                     queued_id)


class Basic(unittest.TestCase):
    """One relayd with recipients = 3 for the ordinary session replies."""

    @classmethod
    def setUpClass(cls):
        cls.h = Relayd(sections={"limits": {"recipients": "3",
                                            "message_size": "10m"}})
        cls.h.start()

    @classmethod
    def tearDownClass(cls):
        cls.h.cleanup()

    def assertReply(self, got, code, text_start):
        self.assertEqual(got[0], code, got)
        self.assertTrue(got[1].startswith(text_start),
                        f"{got!r} does not start with {text_start!r}")

    def ehlo_keywords(self, kind):
        s, _ = self.h.raw(kind)
        code, text = send_cmd(s, "EHLO client.test")
        send_cmd(s, "QUIT")
        s.close()
        self.assertEqual(code, 250, text)
        lines = text.split("\n")
        return lines[0], [ln.upper() for ln in lines[1:]]

    def test_banner(self):
        s, banner = self.h.raw("plain")
        s.close()
        self.assertEqual(banner[0], 220)
        self.assertTrue(banner[1].startswith("relay.test ESMTP relayd"), banner)

    def test_ehlo_plain_insecure_auth(self):
        first, kw = self.ehlo_keywords("plain")
        self.assertTrue(first.startswith("relay.test"), first)
        for k in ("PIPELINING", "SIZE 10485760", "8BITMIME",
                  "ENHANCEDSTATUSCODES", "SMTPUTF8", "AUTH PLAIN LOGIN"):
            self.assertIn(k, kw)
        self.assertNotIn("STARTTLS", kw)

    def test_ehlo_starttls_listener_before_tls(self):
        _, kw = self.ehlo_keywords("starttls")
        for k in ("PIPELINING", "SIZE 10485760", "8BITMIME",
                  "ENHANCEDSTATUSCODES", "SMTPUTF8", "STARTTLS"):
            self.assertIn(k, kw)
        self.assertFalse([k for k in kw if k.startswith("AUTH")], kw)

    def test_helo(self):
        s, _ = self.h.raw()
        code, text = send_cmd(s, "HELO client.test")
        self.assertEqual(code, 250, text)
        self.assertTrue(text.startswith("relay.test"), text)
        s.close()

    def test_mail_before_ehlo(self):
        s, _ = self.h.raw()
        self.assertReply(send_cmd(s, "MAIL FROM:<alice@own-domain.com>"), 503, "5.5.1")
        s.close()

    def test_mail_without_auth(self):
        s = self.h.session(user=None)
        self.assertReply(send_cmd(s, "MAIL FROM:<alice@own-domain.com>"), 530,
                         "5.7.0 Authentication required")
        s.close()

    def test_mail_replies(self):
        s = self.h.session()
        self.assertReply(send_cmd(s, "MAIL FROM:<alice@own-domain.com> SIZE=999999999"),
                         552, "5.3.4")
        self.assertReply(send_cmd(s, "MAIL alice@own-domain.com"), 501, "5.5.2")
        self.assertReply(send_cmd(s, "MAIL FROM:<alice@@own-domain.com>"), 501, "5.1.7")
        self.assertReply(send_cmd(s, "MAIL FROM:<alice@own-domain.com> FOO=BAR"), 555, "5.5.4")
        self.assertReply(send_cmd(s, "MAIL FROM:<\u00e5lice@own-domain.com>".encode()),
                         553, "5.6.7")
        self.assertReply(send_cmd(s, "MAIL FROM:<alice@own-domain.com> SIZE=1000"), 250, "2.1.0")
        self.assertReply(send_cmd(s, "MAIL FROM:<alice@own-domain.com>"), 503, "5.5.1")
        self.assertReply(send_cmd(s, "RSET"), 250, "2.0.0")
        self.assertReply(send_cmd(s, "MAIL FROM:<\u00e5lice@own-domain.com> SMTPUTF8".encode()),
                         250, "2.1.0")
        s.close()

    def test_rcpt_replies(self):
        s = self.h.session()
        self.assertReply(send_cmd(s, "RCPT TO:<rcpt@rcpt-domain.org>"), 503, "5.5.1")
        self.assertReply(send_cmd(s, "MAIL FROM:<alice@own-domain.com>"), 250, "2.1.0")
        self.assertReply(send_cmd(s, "RCPT TO:<rcpt@@rcpt-domain.org>"), 501, "5.1.3")
        for i in range(3):
            self.assertReply(send_cmd(s, f"RCPT TO:<r{i}@rcpt-domain.org>"), 250, "2.1.5")
        self.assertReply(send_cmd(s, "RCPT TO:<r3@rcpt-domain.org>"), 452, "4.5.3")
        s.close()

    def test_data_queued(self):
        s = self.h.session()
        self.assertReply(send_cmd(s, "MAIL FROM:<alice@own-domain.com>"), 250, "2.1.0")
        self.assertReply(send_cmd(s, "DATA"), 503, "5.5.1")
        self.assertReply(send_cmd(s, "RCPT TO:<one@rcpt-domain.org>"), 250, "2.1.5")
        code, text = send_cmd(s, "DATA")
        self.assertEqual(code, 354, text)
        s.sendall(message(subject="data-queued") + b".\r\n")
        code, text = read_reply(s, 30)
        self.assertEqual(code, 250, text)
        qid = queued_id(text)
        self.assertIsNotNone(qid, text)
        self.assertReply(send_cmd(s, "QUIT"), 221, "2.0.0")
        self.assertTrue(is_closed(s))
        s.close()
        got = [(j, e) for j, e in self.h.captured(want=1, wait=10) if j["id"] == qid]
        for _ in range(100):
            if got:
                break
            time.sleep(0.1)
            got = [(j, e) for j, e in self.h.captured(wait=0) if j["id"] == qid]
        self.assertEqual(len(got), 1, f"{qid} not captured")
        j, eml = got[0]
        self.assertEqual([r["rcpt"] for r in j["recipients"]], ["one@rcpt-domain.org"])
        self.assertIn("mail_from", j["recipients"][0])
        self.assertIn(b"Subject: data-queued\r\n", eml)
        self.assertTrue(eml.endswith(b"\r\n\r\nHello.\r\n"), eml[-60:])

    def test_simple_commands(self):
        s = self.h.session(user=None)
        self.assertReply(send_cmd(s, "NOOP"), 250, "2.0.0")
        self.assertReply(send_cmd(s, "RSET"), 250, "2.0.0")
        self.assertReply(send_cmd(s, "VRFY alice"), 252, "2.5.2")
        code, text = send_cmd(s, "HELP")
        self.assertEqual(code, 214, text)
        self.assertReply(send_cmd(s, "FROBNICATE"), 500, "5.5.2")
        self.assertReply(send_cmd(s, "QUIT"), 221, "2.0.0")
        self.assertTrue(is_closed(s))
        s.close()

    def test_http_request_closes(self):
        for line in (b"GET / HTTP/1.0", b"POST /x HTTP/1.1", b"CONNECT a:25 HTTP/1.1"):
            s, _ = self.h.raw()
            s.sendall(line + b"\r\n")
            s.settimeout(5)
            try:
                data = s.recv(100)
            except ConnectionResetError:
                data = b""
            self.assertEqual(data, b"", f"{line!r} got a reply {data!r}")
            s.close()

    def test_long_command_line(self):
        s = self.h.session(user=None)
        self.assertReply(send_cmd(s, "NOOP " + "x" * 600), 500, "5.5.6")
        self.assertReply(send_cmd(s, "NOOP"), 250, "2.0.0")
        # 512 octets including CRLF is still a command.
        self.assertReply(send_cmd(s, "NOOP " + "x" * 505), 250, "2.0.0")
        s.close()

    def test_megabyte_without_crlf(self):
        s = self.h.session(user=None)
        before = self.h.rss_kb()
        chunk = b"A" * 65536
        closed = False
        try:
            for _ in range(16):
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        time.sleep(0.5)
        after = self.h.rss_kb()
        self.assertLess(after - before, 4096, f"VmRSS {before} -> {after} KiB")
        if not closed:
            try:
                s.sendall(b"\r\n")
                code, text = read_reply(s)
            except (BrokenPipeError, ConnectionResetError):
                code, text = 0, ""
            if code:
                self.assertReply((code, text), 500, "5.5.6")
                self.assertReply(send_cmd(s, "NOOP"), 250, "2.0.0")
        s.close()

    def test_pipelining(self):
        s = self.h.session()
        s.sendall(b"MAIL FROM:<alice@own-domain.com>\r\n"
                  b"RCPT TO:<p1@rcpt-domain.org>\r\n"
                  b"RCPT TO:<p2@rcpt-domain.org>\r\n"
                  b"RCPT TO:<p3@rcpt-domain.org>\r\n"
                  b"DATA\r\n")
        want = [(250, "2.1.0"), (250, "2.1.5"), (250, "2.1.5"), (250, "2.1.5"),
                (354, "")]
        for code, enh in want:
            self.assertReply(read_reply(s), code, enh)
        s.sendall(message(subject="pipelined") + b".\r\n")
        code, text = read_reply(s, 30)
        self.assertEqual(code, 250, text)
        qid = queued_id(text)
        self.assertIsNotNone(qid, text)
        s.close()
        got = []
        for _ in range(100):
            got = [j for j, e in self.h.captured(wait=0) if j["id"] == qid]
            if got:
                break
            time.sleep(0.1)
        self.assertEqual(len(got), 1)
        self.assertEqual(sorted(r["rcpt"] for r in got[0]["recipients"]),
                         ["p1@rcpt-domain.org", "p2@rcpt-domain.org", "p3@rcpt-domain.org"])

    def test_pipelined_flood_unread(self):
        """300,000 pipelined NOOPs from a client with a 4 KiB receive
        buffer that reads nothing for a second: the replies (4.2 MB) back
        up, so a direct write of relayd comes up short (seen with strace)
        and the rest goes through the bufferevent, with reading paused
        above its output mark (SMTP_OUT_HIGH).  Every reply arrives,
        exactly once and in order, then a transaction still works."""
        import threading
        n = 300000
        s = self.h.session(rcvbuf=4096)
        sent = threading.Event()

        def send_all():
            s.sendall(b"NOOP\r\n" * n)
            sent.set()

        t = threading.Thread(target=send_all)
        t.start()
        time.sleep(1.0)
        want = b"250 2.0.0 Ok\r\n" * n
        got = b""
        s.settimeout(30)
        while len(got) < len(want):
            d = s.recv(65536)
            if not d:
                break
            got += d
        t.join(30)
        self.assertTrue(sent.is_set())
        self.assertEqual(len(got), len(want))
        self.assertEqual(got, want)
        s.sendall(b"MAIL FROM:<alice@own-domain.com>\r\n"
                  b"RCPT TO:<flood@rcpt-domain.org>\r\nDATA\r\n")
        self.assertReply(read_reply(s), 250, "2.1.0")
        self.assertReply(read_reply(s), 250, "2.1.5")
        self.assertReply(read_reply(s), 354, "")
        s.sendall(message(subject="after the flood") + b".\r\n")
        code, text = read_reply(s, 30)
        self.assertEqual(code, 250, text)
        self.assertIsNotNone(queued_id(text), text)
        s.sendall(b"QUIT\r\n")
        self.assertReply(read_reply(s), 221, "2.0.0")
        s.close()

    def test_pipelined_quit_after_rset(self):
        s = self.h.session(user=None)
        s.sendall(b"RSET\r\nNOOP\r\nQUIT\r\n")
        self.assertReply(read_reply(s), 250, "2.0.0")
        self.assertReply(read_reply(s), 250, "2.0.0")
        self.assertReply(read_reply(s), 221, "2.0.0")
        self.assertTrue(is_closed(s))
        s.close()


class ErrorLimits(unittest.TestCase):
    def test_hard_limit(self):
        h = Relayd(sections={"limits": {"error_delay": "0s"}})
        try:
            h.start()
            s, _ = h.raw()
            plain = 0
            last = None
            for i in range(30):
                last = send_cmd(s, "FROBNICATE")
                if last[0] != 500:
                    break
                self.assertTrue(last[1].startswith("5.5.2"), last)
                plain += 1
            self.assertEqual(last[0], 421, last)
            self.assertTrue(last[1].startswith("4.7.0"), last)
            # The 421 comes at the 20th error (or right after it).
            self.assertIn(plain, (19, 20), f"{plain} errors before 421")
            self.assertTrue(is_closed(s))
            s.close()
        finally:
            h.cleanup()

    def test_soft_limit_delay(self):
        h = Relayd(sections={"limits": {"error_delay": "1s"}})
        try:
            h.start()
            s, _ = h.raw()
            times = []
            for i in range(14):
                t = time.monotonic()
                code, text = send_cmd(s, "FROBNICATE")
                times.append(time.monotonic() - t)
                self.assertEqual(code, 500, text)
            for i in range(9):
                self.assertLess(times[i], 0.5, f"error {i + 1} took {times[i]:.2f}s")
            for i in range(11, 14):
                self.assertGreater(times[i], 0.8, f"error {i + 1} took {times[i]:.2f}s")
                self.assertLess(times[i], 3.0, f"error {i + 1} took {times[i]:.2f}s")
            s.close()
        finally:
            h.cleanup()


class Timeouts(unittest.TestCase):
    def test_command_timeout(self):
        h = Relayd(sections={"limits": {"command_timeout": "2s"}})
        try:
            h.start()
            s, _ = h.raw()
            t = time.monotonic()
            code, text = read_reply(s, 10)
            dt = time.monotonic() - t
            self.assertEqual(code, 421, text)
            self.assertTrue(text.startswith("4.4.2"), text)
            self.assertGreater(dt, 1.5)
            self.assertLess(dt, 5.0)
            self.assertTrue(is_closed(s))
            s.close()
        finally:
            h.cleanup()

    def test_session_timeout_drip(self):
        h = Relayd(sections={"limits": {"session_timeout": "3s"}})
        try:
            h.start()
            s, _ = h.raw()
            t = time.monotonic()
            closed_at = None
            payload = b"NOOP\r\n" * 100
            s.settimeout(0.5)
            for i in range(len(payload)):
                if time.monotonic() - t > 12:
                    break
                try:
                    s.sendall(payload[i:i + 1])
                except (BrokenPipeError, ConnectionResetError):
                    closed_at = time.monotonic() - t
                    break
                # Read replies (NOOPs, a final 421) until EOF or 0.5 s.
                try:
                    d = s.recv(4096)
                    if d == b"":
                        closed_at = time.monotonic() - t
                        break
                    time.sleep(0.5)
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    closed_at = time.monotonic() - t
                    break
            s.close()
            self.assertIsNotNone(closed_at, "dripping client was never closed")
            self.assertGreater(closed_at, 2.0)
            self.assertLess(closed_at, 7.0)
        finally:
            h.cleanup()


class ConnectionLimits(unittest.TestCase):
    def check_limit(self, h, allowed, kind="plain"):
        socks = []
        try:
            for i in range(allowed):
                s, banner = h.raw(kind)
                self.assertEqual(banner[0], 220, banner)
                socks.append(s)
            s, reply = h.raw(kind)
            socks.append(s)
            self.assertEqual(reply[0], 421, reply)
            self.assertTrue(reply[1].startswith("4.7.0"), reply)
            self.assertTrue(is_closed(s))
            # A slot frees when a session ends.
            send_cmd(socks[0], "QUIT")
            socks[0].close()
            time.sleep(0.3)
            s, banner = h.raw(kind)
            socks.append(s)
            self.assertEqual(banner[0], 220, banner)
        finally:
            for s in socks:
                s.close()

    def test_connections_per_ip(self):
        h = Relayd(sections={"limits": {"connections_per_ip": "3"}})
        try:
            h.start()
            time.sleep(0.3)  # the start-up probe's connection is gone
            self.check_limit(h, 3)
        finally:
            h.cleanup()

    def test_max_connections(self):
        h = Relayd(sections={"listen plain": {"max_connections": "2"}})
        try:
            h.start()
            time.sleep(0.3)
            self.check_limit(h, 2)
            # The other listeners have their own count.
            s, banner = h.raw("starttls")
            self.assertEqual(banner[0], 220, banner)
            s.close()
        finally:
            h.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
