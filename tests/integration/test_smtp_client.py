"""The outbound SMTP client (relayd/smtp_client.c) against real peers on
loopback, driven through tests/smtp_client_drive (built next to RELAYD):

- aiosmtpd servers (Debian's python3-aiosmtpd) in clear, with STARTTLS,
  with AUTH, with implicit TLS, answering chosen replies;
- a scripted raw server for what aiosmtpd cannot do: PIPELINING, no
  8BITMIME, a small SIZE, AUTH LOGIN only, a reply injected after the 220
  to STARTTLS, stalls, malformed replies, a close in the middle of DATA.

Run with Debian's /usr/bin/python3.
"""
import base64
import hashlib
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import RELAYD, free_port  # noqa: E402

from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult  # noqa: E402

DRIVE = os.environ.get("SMTP_CLIENT_DRIVE", os.path.join(
    os.path.dirname(os.path.abspath(RELAYD)), "tests", "smtp_client_drive"))

TMP = None
CERT = KEY = None


def setUpModule():
    global TMP, CERT, KEY
    TMP = tempfile.mkdtemp(prefix="relayd-smtpc-")
    CERT, KEY = os.path.join(TMP, "mx.crt"), os.path.join(TMP, "mx.key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", KEY, "-out", CERT, "-subj", "/CN=mx.test",
         "-addext", "subjectAltName=DNS:mx.test", "-days", "2"],
        check=True, capture_output=True)


def tearDownModule():
    subprocess.run(["rm", "-rf", TMP])


def server_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    return ctx


def msgfile(data, name="msg.eml"):
    fd, path = tempfile.mkstemp(prefix="m-", suffix=".eml", dir=TMP)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


MSG = (b"From: a@sender.test\r\nTo: x@rcpt.test\r\nSubject: test\r\n\r\n"
       b"Hello.\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n")


def drive(port, *args, timeout=60, host="127.0.0.1"):
    """Run the driver; return (stdout lines, stderr text, seconds, rc)."""
    t0 = time.time()
    r = subprocess.run([DRIVE, host, str(port)] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    # Under -Db_sanitize=address,undefined any report fails the test.
    if "Sanitizer" in r.stderr or "runtime error:" in r.stderr:
        raise AssertionError("sanitizer report:\n" + r.stderr)
    return r.stdout.splitlines(), r.stderr, time.time() - t0, r.returncode


class Handler:
    """aiosmtpd handler: records messages; replies chosen per address."""

    def __init__(self, rcpt_replies=None, mail_reply=None, data_reply=None):
        self.rcpt_replies = rcpt_replies or {}
        self.mail_reply = mail_reply
        self.data_reply = data_reply
        self.messages = []
        self.auth = []

    async def handle_MAIL(self, server, session, envelope, address, opts):
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(opts)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, opts):
        for key, reply in self.rcpt_replies.items():
            if address.startswith(key):
                return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              list(envelope.mail_options),
                              envelope.original_content))
        if self.data_reply:
            return self.data_reply
        return "250 2.0.0 Ok: queued as Q1"

    def authenticator(self, server, session, envelope, mechanism, data):
        self.auth.append((mechanism, data.login, data.password))
        ok = data.login == b"relay-user" and data.password == b"s3cret pw"
        return AuthResult(success=ok, handled=False)


class Aio:
    def __init__(self, handler, **kw):
        self.port = free_port()
        self.ctl = Controller(handler, hostname="127.0.0.1", port=self.port,
                              **kw)
        self.ctl.start()

    def stop(self):
        self.ctl.stop()


class Script:
    """A scripted SMTP server on loopback, one thread, one connection at
    a time.  replies: verb -> reply string or list of replies (consumed in
    order); "DOT" is the reply after the message.  Records the raw chunks
    received, the command lines and the messages (dot-stuffed, as sent)."""

    def __init__(self, ehlo=("PIPELINING", "8BITMIME", "SIZE 100000000"),
                 replies=None, banner="220 script.test ESMTP",
                 tls=False, inject=b"", stall=None, close_in_data=False,
                 auth_login=False, implicit=False, pause_in_data=0):
        self.ehlo = list(ehlo)
        self.replies = dict(replies or {})
        self.banner = banner
        self.tls = tls
        self.inject = inject
        self.stall = stall
        self.close_in_data = close_in_data
        # Seconds to read nothing after the 354: the client's socket
        # fills and what is left waits in its buffers.
        self.pause_in_data = pause_in_data
        self.auth_login = auth_login
        self.implicit = implicit
        self.chunks = []
        self.lines = []
        self.messages = []
        self.creds = []
        self.connections = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping = True
        self.thread.join(10)
        self.sock.close()

    def reply_for(self, verb, default):
        r = self.replies.get(verb, default)
        if isinstance(r, list):
            r = r.pop(0) if r else default
        return r

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            conn.settimeout(0.2)
            self.cur = conn
            try:
                self.session(conn)
            except (OSError, ssl.SSLError, EOFError):
                pass
            finally:
                self.cur.close()
                conn.close()

    def session(self, conn):
        buf = [b""]

        def recv():
            while not self.stopping:
                try:
                    d = conn.recv(65536)
                except socket.timeout:
                    continue
                if not d:
                    raise EOFError
                self.chunks.append(d)
                return d
            raise EOFError

        def readline():
            while b"\n" not in buf[0]:
                buf[0] += recv()
            line, buf[0] = buf[0].split(b"\n", 1)
            return line + b"\n"

        def send(s):
            conn.sendall(s.encode() + b"\r\n" if isinstance(s, str) else s)

        def stall_forever():
            while True:
                recv()

        if self.implicit:
            conn = server_ctx().wrap_socket(conn, server_side=True)
            conn.settimeout(0.2)
            self.cur = conn
        if self.stall == "BANNER":
            stall_forever()
        send(self.banner)
        while True:
            line = readline()
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            self.lines.append(text)
            verb = text.split(" ")[0].upper()
            if self.stall == verb:
                stall_forever()
            if verb == "EHLO":
                r = self.reply_for("EHLO", None)
                if r:
                    send(r)
                    continue
                ext = list(self.ehlo)
                if self.tls and not isinstance(conn, ssl.SSLSocket):
                    ext.append("STARTTLS")
                lines = ["script.test"] + ext
                send("\r\n".join("250%s%s" % ("-" if i < len(lines) - 1
                                              else " ", l)
                                 for i, l in enumerate(lines)))
            elif verb == "STARTTLS" and self.tls:
                # The 220 and the injected bytes in one segment.
                send(b"220 2.0.0 Ready to start TLS\r\n" + self.inject)
                buf[0] = b""
                conn.settimeout(5)
                conn = server_ctx().wrap_socket(conn, server_side=True)
                conn.settimeout(0.2)
                self.cur = conn
            elif verb == "AUTH" and self.auth_login:
                send("334 VXNlcm5hbWU6")
                u = base64.b64decode(readline().strip())
                send("334 UGFzc3dvcmQ6")
                p = base64.b64decode(readline().strip())
                self.creds.append((u, p))
                send("235 2.7.0 Authentication successful")
            elif verb == "DATA":
                r = self.reply_for("DATA", "354 End data with <CR><LF>.<CR><LF>")
                send(r)
                if not r.startswith("354"):
                    continue
                if self.pause_in_data:
                    time.sleep(self.pause_in_data)
                    # The whole message, read in bulk, as sent.
                    parts, tail = [buf[0]], buf[0][-5:]
                    while not tail.endswith(b"\r\n.\r\n"):
                        d = recv()
                        parts.append(d)
                        tail = (tail + d)[-5:]
                    data = b"".join(parts)
                    buf[0] = b""
                    self.messages.append(data[:-3])
                    send(self.reply_for("DOT", "250 2.0.0 Ok: queued as S1"))
                    continue
                body = b""
                while True:
                    if self.close_in_data and len(body) > 100:
                        return
                    l = readline()
                    if l == b".\r\n":
                        break
                    body += l
                self.messages.append(body)
                if self.stall == "DOT":
                    stall_forever()
                send(self.reply_for("DOT", "250 2.0.0 Ok: queued as S1"))
            elif verb == "QUIT":
                send("221 2.0.0 Bye")
                return
            else:
                send(self.reply_for(verb, {
                    "MAIL": "250 2.1.0 Ok", "RCPT": "250 2.1.5 Ok",
                    "RSET": "250 2.0.0 Ok", "HELO": "250 script.test",
                    "NOOP": "250 2.0.0 Ok"}.get(verb, "502 5.5.2 what")))


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop()

    def aio(self, handler=None, **kw):
        h = handler or Handler()
        s = Aio(h, **kw)
        self.servers.append(s)
        return s, h

    def script(self, **kw):
        s = Script(**kw)
        self.servers.append(s)
        return s

    # Delivery basics.

    def test_delivery_dot_stuffing_and_quit(self):
        s, h = self.aio()
        out, err, _, rc = drive(s.port, "--txn", "a@sender.test",
                                "x@rcpt.test", msgfile(MSG))
        self.assertEqual(rc, 0)
        self.assertTrue(out[0].startswith("ready esmtp=1 tls=0 "), out)
        self.assertEqual(out[1:], [
            "done txn=0 status=ok code=250 enh=2.0.0 state=dot "
            "text=250 2.0.0 Ok: queued as Q1",
            "rcpt txn=0 i=0 status=ok code=250 enh=2.0.0 state=dot "
            "text=250 2.0.0 Ok: queued as Q1",
            "delivered txn=0 1/1 conn_lost=0",
            "closed txn=-1 status=ok code=221 enh=- state=quit text=221 Bye"])
        # aiosmtpd undoes the dot-stuffing: the bytes arrive unchanged.
        self.assertEqual(h.messages, [("a@sender.test", ["x@rcpt.test"],
                                       ["SIZE=%d" % len(MSG)], MSG)])

    def test_dot_stuffing_on_the_wire(self):
        s = self.script()
        body = b".a\r\nb\r\n..c\r\n.\r\n"
        out, err, _, rc = drive(s.port, "--txn", "a@s.test", "x@r.test",
                                msgfile(body))
        self.assertIn("delivered txn=0 1/1 conn_lost=0", out)
        self.assertEqual(s.messages, [b"..a\r\nb\r\n...c\r\n..\r\n"])

    def test_message_without_final_crlf_gets_one(self):
        s = self.script()
        out, _, _, _ = drive(s.port, "--txn", "a@s.test", "x@r.test",
                             msgfile(b"Subject: x\r\n\r\nno end"))
        self.assertIn("delivered txn=0 1/1 conn_lost=0", out)
        self.assertEqual(s.messages, [b"Subject: x\r\n\r\nno end\r\n"])

    def test_empty_message(self):
        s = self.script()
        out, _, _, _ = drive(s.port, "--txn", "a@s.test", "x@r.test",
                             msgfile(b""))
        self.assertIn("delivered txn=0 1/1 conn_lost=0", out)
        self.assertEqual(s.messages, [b"\r\n"])

    def test_ipv6(self):
        h = Handler()
        s6 = socket.socket(socket.AF_INET6)
        s6.bind(("::1", 0))
        port = s6.getsockname()[1]
        s6.close()
        ctl = Controller(h, hostname="::1", port=port)
        ctl.start()
        try:
            out, err, _, _ = drive(port, "--txn", "a@s.test", "x@r.test",
                                   msgfile(MSG), host="::1")
        finally:
            ctl.stop()
        self.assertIn("delivered txn=0 1/1 conn_lost=0", out)
        self.assertIn("smtp_client connected addr=[::1]:%d" % port, err)
        self.assertEqual(h.messages[0][3], MSG)

    def test_null_sender_and_several_recipients(self):
        s, h = self.aio()
        out, _, _, _ = drive(s.port, "--txn", "-",
                             "x@r.test,y@r.test,z@r.test", msgfile(MSG))
        self.assertIn("delivered txn=0 3/3 conn_lost=0", out)
        self.assertEqual(h.messages[0][0], "<>")
        self.assertEqual(h.messages[0][1], ["x@r.test", "y@r.test",
                                            "z@r.test"])

    def test_multiple_transactions_one_connection(self):
        s = self.script()
        m = msgfile(MSG)
        out, _, _, _ = drive(s.port, "--txn", "a@s.test", "x@r.test", m,
                             "--txn", "b@s.test", "y@r.test", m,
                             "--txn", "c@s.test", "z@r.test", m)
        for i in range(3):
            self.assertIn("delivered txn=%d 1/1 conn_lost=0" % i, out)
        self.assertEqual(s.connections, 1)
        self.assertEqual(len(s.messages), 3)
        # Successful transactions need no RSET between them.
        self.assertNotIn("RSET", s.lines)
        self.assertEqual([l for l in s.lines if l.startswith("MAIL")], [
            "MAIL FROM:<a@s.test> SIZE=%d" % len(MSG),
            "MAIL FROM:<b@s.test> SIZE=%d" % len(MSG),
            "MAIL FROM:<c@s.test> SIZE=%d" % len(MSG)])

    def test_ten_mib_message(self):
        s, h = self.aio()
        line = b"0123456789" * 7 + b"\r\n"
        parts = []
        for i in range(10 * 1024 * 1024 // len(line) + 1):
            parts.append(b"." + line if i % 1000 == 0 else line)
        body = b"Subject: big\r\n\r\n" + b"".join(parts)
        self.assertGreater(len(body), 10 * 1024 * 1024)
        out, _, took, _ = drive(s.port, "--txn", "a@s.test", "x@r.test",
                                msgfile(body), timeout=120)
        self.assertIn("delivered txn=0 1/1 conn_lost=0", out)
        self.assertEqual(len(h.messages), 1)
        self.assertEqual(hashlib.sha256(h.messages[0][3]).hexdigest(),
                         hashlib.sha256(body).hexdigest())
        self.assertLess(took, 60)

    def test_full_socket_then_next_transaction(self):
        # The server reads nothing for a second after its 354: the
        # client's direct writes fill the socket, the bufferevent writes
        # the rest of the 16 MiB body (smtp_client.c, client_flush_cb)
        # and the next transaction on the same connection is written
        # directly again.
        s = self.script(pause_in_data=1.0)
        line = b"0123456789" * 7 + b"\r\n"
        big = b"Subject: big\r\n\r\n" + line * (16 * 1024 * 1024 //
                                                   len(line))
        small = b"Subject: small\r\n\r\nno dots here\r\n"
        out, _, _, _ = drive(s.port, "--txn", "a@s.test", "x@r.test",
                             msgfile(big), "--txn", "b@s.test", "y@r.test",
                             msgfile(small), timeout=120)
        self.assertIn("delivered txn=0 1/1 conn_lost=0", out)
        self.assertIn("delivered txn=1 1/1 conn_lost=0", out)
        self.assertEqual(s.connections, 1)
        self.assertEqual(len(s.messages), 2)
        self.assertEqual(hashlib.sha256(s.messages[0]).hexdigest(),
                         hashlib.sha256(big).hexdigest())
        self.assertEqual(s.messages[1], small)
        self.assertEqual([l for l in s.lines if l.startswith("MAIL")], [
            "MAIL FROM:<a@s.test> SIZE=%d" % len(big),
            "MAIL FROM:<b@s.test> SIZE=%d" % len(small)])

    # Extensions.

    def test_pipelining_one_write(self):
        s = self.script()
        out, _, _, _ = drive(s.port, "--txn", "a@s.test", "x@r.test,y@r.test",
                             msgfile(MSG))
        self.assertIn("delivered txn=0 2/2 conn_lost=0", out)
        self.assertIn(b"MAIL FROM:<a@s.test> SIZE=%d\r\nRCPT TO:<x@r.test>"
                      b"\r\nRCPT TO:<y@r.test>\r\nDATA\r\n" % len(MSG),
                      s.chunks)

    def test_no_pipelining_one_command_at_a_time(self):
        s = self.script(ehlo=("8BITMIME",))
        out, _, _, _ = drive(s.port, "--txn", "a@s.test", "x@r.test,y@r.test",
                             msgfile(MSG))
        self.assertIn("delivered txn=0 2/2 conn_lost=0", out)
        for c in (b"MAIL FROM:<a@s.test>\r\n", b"RCPT TO:<x@r.test>\r\n",
                  b"RCPT TO:<y@r.test>\r\n", b"DATA\r\n"):
            self.assertIn(c, s.chunks)

    def test_8bit_with_8bitmime(self):
        s, h = self.aio()
        body = "Subject: caf\u00e9\r\n\r\nd\u00e9j\u00e0 vu\r\n".encode()
        out, _, _, _ = drive(s.port, "--flags", "8bit", "--txn", "a@s.test",
                             "x@r.test", msgfile(body))
        self.assertIn("delivered txn=0 1/1 conn_lost=0", out)
        self.assertEqual(h.messages[0][2], ["SIZE=%d" % len(body),
                                            "BODY=8BITMIME"])
        self.assertEqual(h.messages[0][3], body)

    def test_8bit_without_8bitmime_is_refused_unconverted(self):
        s = self.script(ehlo=("PIPELINING",))
        out, _, _, _ = drive(s.port, "--flags", "8bit", "--txn", "a@s.test",
                             "x@r.test", msgfile(b"Subject: \xe9\r\n\r\nx\r\n"))
        self.assertIn(
            "rcpt txn=0 i=0 status=permfail code=0 enh=5.6.3 state=ready "
            "text=message is 8-bit and the server does not offer 8BITMIME; "
            "converting it would break the DKIM signatures", out)
        self.assertFalse([l for l in s.lines if l.startswith("MAIL")])
        self.assertEqual(s.messages, [])

    def test_smtputf8_not_offered(self):
        s = self.script()
        out, _, _, _ = drive(s.port, "--flags", "utf8,8bit", "--txn",
                             "\u00fc@s.test", "x@r.test", msgfile(MSG))
        self.assertIn(
            "rcpt txn=0 i=0 status=permfail code=0 enh=5.6.7 state=ready "
            "text=message needs SMTPUTF8 and the server does not offer it",
            out)
        self.assertFalse([l for l in s.lines if l.startswith("MAIL")])

    def test_smtputf8_offered(self):
        s, h = self.aio(enable_SMTPUTF8=True)
        out, _, _, _ = drive(s.port, "--flags", "utf8,8bit", "--txn",
                             "\u00fc@s.test", "x@r.test", msgfile(MSG))
        self.assertIn("delivered txn=0 1/1 conn_lost=0", out)
        self.assertEqual(h.messages[0][0], "\u00fc@s.test")
        self.assertIn("SMTPUTF8", h.messages[0][2])

    def test_size_over_the_servers_limit(self):
        s = self.script(ehlo=("PIPELINING", "8BITMIME", "SIZE 50"))
        out, _, _, _ = drive(s.port, "--txn", "a@s.test", "x@r.test",
                             msgfile(MSG))
        self.assertIn(
            "rcpt txn=0 i=0 status=permfail code=0 enh=5.3.4 state=ready "
            "text=message size %d exceeds the server's limit of 50" % len(MSG),
            out)
        self.assertFalse([l for l in s.lines if l.startswith("MAIL")])

    def test_ehlo_refused_helo_fallback(self):
        s = self.script(replies={"EHLO": "502 5.5.2 EHLO not implemented"})
        out, _, _, _ = drive(s.port, "--txn", "a@s.test", "x@r.test",
                             msgfile(MSG))
        self.assertTrue(out[0].startswith("ready esmtp=0 "), out)
        self.assertIn("HELO client.test", s.lines)
        self.assertIn("MAIL FROM:<a@s.test>", s.lines)
        self.assertIn("delivered txn=0 1/1 conn_lost=0", out)

    # Replies.

    def test_rcpt_results_per_recipient(self):
        s, h = self.aio(Handler(rcpt_replies={
            "bad@": "550 5.1.1 <bad@r.test>: User unknown",
            "later@": "450 4.2.1 Mailbox busy"}))
        out, _, _, _ = drive(s.port, "--txn", "a@s.test",
                             "good@r.test,bad@r.test,later@r.test",
                             msgfile(MSG))
        self.assertIn("rcpt txn=0 i=0 status=ok code=250 enh=2.0.0 "
                      "state=dot text=250 2.0.0 Ok: queued as Q1", out)
        self.assertIn("rcpt txn=0 i=1 status=permfail code=550 enh=5.1.1 "
                      "state=rcpt text=550 5.1.1 <bad@r.test>: User unknown",
                      out)
        self.assertIn("rcpt txn=0 i=2 status=tempfail code=450 enh=4.2.1 "
                      "state=rcpt text=450 4.2.1 Mailbox busy", out)
        self.assertIn("delivered txn=0 1/3 conn_lost=0", out)
        self.assertEqual(h.messages[0][1], ["good@r.test"])

    def test_mail_refused_then_rset_and_next_transaction(self):
        s = self.script(replies={"MAIL": ["553 5.7.1 Sender refused",
                                          "250 2.1.0 Ok"]})
        m = msgfile(MSG)
        out, _, _, _ = drive(s.port, "--txn", "a@s.test", "x@r.test,y@r.test",
                             m, "--txn", "b@s.test", "x@r.test", m)
        for i in (0, 1):
            self.assertIn("rcpt txn=0 i=%d status=permfail code=553 "
                          "enh=5.7.1 state=mail text=553 5.7.1 Sender "
                          "refused" % i, out)
        self.assertIn("delivered txn=0 0/2 conn_lost=0", out)
        self.assertIn("delivered txn=1 1/1 conn_lost=0", out)
        # Pipelined RCPTs and DATA after the refused MAIL: this server
        # said 354 anyway, so the client ended the message at once with a
        # lone dot (RFC 2920 section 3.1); RSET before the next one.
        i = s.lines.index("RSET")
        self.assertTrue(s.lines[i + 1].startswith("MAIL FROM:<b@s.test>"))
        self.assertEqual(len(s.messages), 2)
        self.assertEqual(s.messages[0], b"")

    def test_all_recipients_refused_no_message(self):
        s = self.script(ehlo=("8BITMIME",), replies={
            "RCPT": "550 5.1.1 No such user"})
        out, _, _, _ = drive(s.port, "--txn", "a@s.test", "x@r.test",
                             msgfile(MSG))
        self.assertIn("rcpt txn=0 i=0 status=permfail code=550 enh=5.1.1 "
                      "state=rcpt text=550 5.1.1 No such user", out)
        self.assertNotIn("DATA", s.lines)
        self.assertEqual(s.messages, [])

    def test_all_recipients_refused_pipelined(self):
        s = self.script(replies={"RCPT": "550 5.1.1 No such user",
                                 "DATA": "554 5.5.1 No valid recipients"})
        m = msgfile(MSG)
        out, _, _, _ = drive(s.port, "--txn", "a@s.test", "x@r.test", m,
                             "--txn", "b@s.test", "y@r.test", m)
        self.assertIn("delivered txn=0 0/1 conn_lost=0", out)
        self.assertIn("rcpt txn=0 i=0 status=permfail code=550 enh=5.1.1 "
                      "state=rcpt text=550 5.1.1 No such user", out)
        self.assertIn("RSET", s.lines)

    def test_final_reply_5xx_and_4xx(self):
        for reply, status, enh in (
                ("554 5.7.1 Message rejected as spam", "permfail", "5.7.1"),
                ("451 4.3.0 Try again later", "tempfail", "4.3.0")):
            s = self.script(replies={"DOT": reply})
            out, _, _, _ = drive(s.port, "--txn", "a@s.test", "x@r.test",
                                 msgfile(MSG))
            self.assertIn("rcpt txn=0 i=0 status=%s code=%s enh=%s state=dot "
                          "text=%s" % (status, reply[:3], enh, reply), out)
            self.assertIn("delivered txn=0 0/1 conn_lost=0", out)

    def test_data_refused(self):
        s = self.script(replies={"DATA": "451 4.3.2 Not now"})
        out, _, _, _ = drive(s.port, "--txn", "a@s.test", "x@r.test",
                             msgfile(MSG))
        self.assertIn("rcpt txn=0 i=0 status=tempfail code=451 enh=4.3.2 "
                      "state=data text=451 4.3.2 Not now", out)

    def test_banner_refused(self):
        s = self.script(banner="554 5.3.2 No service")
        out, _, _, _ = drive(s.port, "--txn", "a@s.test", "x@r.test",
                             msgfile(MSG))
        self.assertEqual(out, [
            "closed txn=-1 status=tempfail code=554 enh=5.3.2 state=banner "
            "text=banner: 554 5.3.2 No service"])

    def test_malformed_reply(self):
        s = self.script(replies={"MAIL": "2x0 what"})
        out, _, _, _ = drive(s.port, "--txn", "a@s.test", "x@r.test",
                             msgfile(MSG))
        self.assertIn("rcpt txn=0 i=0 status=tempfail code=451 enh=4.5.0 "
                      "state=mail text=451 4.5.0 malformed reply from "
                      "server: no reply code", out)
        self.assertIn("delivered txn=0 0/1 conn_lost=1", out)
        self.assertEqual(out[-1], "closed txn=-1 status=tempfail code=451 "
                         "enh=4.5.0 state=mail text=451 4.5.0 malformed "
                         "reply from server: no reply code")

    def test_reply_text_escaped(self):
        s = self.script(replies={"RCPT": "550 5.1.1 bad \x1b[31m\\ \xff"})
        out, _, _, _ = drive(s.port, "--txn", "a@s.test", "x@r.test",
                             msgfile(MSG))
        self.assertIn("rcpt txn=0 i=0 status=permfail code=550 enh=5.1.1 "
                      "state=rcpt text=550 5.1.1 bad \\x1b[31m\\\\ "
                      "\\xc3\\xbf", out)

    # Connection failures and timeouts.

    def test_connect_refused(self):
        port = free_port()
        out, _, _, _ = drive(port, "--txn", "a@s.test", "x@r.test",
                             msgfile(MSG))
        self.assertEqual(out, [
            "closed txn=-1 status=tempfail code=0 enh=4.4.1 "
            "state=connecting text=connect to 127.0.0.1:%d failed: "
            "Connection refused" % port])

    def test_banner_timeout(self):
        s = self.script(stall="BANNER")
        out, _, took, _ = drive(s.port, "--timeout", "2", "--txn",
                                "a@s.test", "x@r.test", msgfile(MSG))
        self.assertEqual(out, [
            "closed txn=-1 status=tempfail code=0 enh=4.4.2 state=banner "
            "text=timeout in state banner"])
        self.assertGreaterEqual(took, 1.9)
        self.assertLess(took, 6)

    def test_rcpt_timeout(self):
        s = self.script(stall="RCPT", ehlo=("8BITMIME",))
        out, _, took, _ = drive(s.port, "--timeout", "2", "--txn",
                                "a@s.test", "x@r.test", msgfile(MSG))
        self.assertIn("rcpt txn=0 i=0 status=tempfail code=0 enh=4.4.2 "
                      "state=rcpt text=timeout in state rcpt", out)
        self.assertIn("delivered txn=0 0/1 conn_lost=1", out)
        self.assertLess(took, 6)

    def test_final_dot_timeout_warns_of_duplicates(self):
        s = self.script(stall="DOT")
        out, err, took, _ = drive(s.port, "--timeout", "2", "--txn",
                                  "a@s.test", "x@r.test", msgfile(MSG))
        self.assertIn("rcpt txn=0 i=0 status=tempfail code=0 enh=4.4.2 "
                      "state=dot text=timeout in state dot (after the final "
                      "dot: the message may be delivered twice)", out)
        self.assertIn("smtp_client dot_timeout addr=127.0.0.1:%d: the message "
                      "may have been delivered and may be delivered twice"
                      % s.port, err)
        self.assertEqual(len(s.messages), 1)
        self.assertLess(took, 6)

    def test_server_closes_during_data(self):
        s = self.script(close_in_data=True)
        # Larger than what loopback socket buffers absorb.
        body = b"Subject: x\r\n\r\n" + b"line of text\r\n" * 2000000
        out, _, _, _ = drive(s.port, "--txn", "a@s.test", "x@r.test",
                             msgfile(body))
        self.assertIn("delivered txn=0 0/1 conn_lost=1", out)
        # Still sending: the state is body (the dot is never out).
        self.assertTrue([l for l in out if l.startswith(
            "rcpt txn=0 i=0 status=tempfail code=0 enh=4.4.2 state=body "
            "text=connection ")], out)
        self.assertTrue(out[-1].startswith("closed txn=-1 status=tempfail"))

    def test_free_inside_done(self):
        s = self.script()
        out, err, _, rc = drive(s.port, "--free-in-done", "--txn", "a@s.test",
                                "x@r.test", msgfile(MSG))
        self.assertEqual(rc, 0)
        self.assertEqual(out[-1], "freed in done")
        self.assertNotIn("closed", "\n".join(out))

    # TLS.

    def test_starttls_opportunistic(self):
        s, h = self.aio(tls_context=server_ctx())
        out, err, _, _ = drive(s.port, "--tls", "opportunistic", "--txn",
                               "a@s.test", "x@r.test", msgfile(MSG))
        self.assertTrue(out[0].startswith("ready esmtp=1 tls=1 verified=0 "),
                        out)
        self.assertIn("delivered txn=0 1/1 conn_lost=0", out)
        self.assertIn("smtp_client tls addr=127.0.0.1:%d version=TLSv1.3"
                      % s.port, err)

    def test_opportunistic_without_starttls_goes_clear(self):
        s, h = self.aio()
        out, _, _, _ = drive(s.port, "--tls", "opportunistic", "--txn",
                             "a@s.test", "x@r.test", msgfile(MSG))
        self.assertTrue(out[0].startswith("ready esmtp=1 tls=0 "), out)
        self.assertIn("delivered txn=0 1/1 conn_lost=0", out)

    def test_required_without_starttls_defers_and_sends_nothing(self):
        s = self.script()
        out, _, _, _ = drive(s.port, "--tls", "required", "--txn",
                             "a@s.test", "x@r.test", msgfile(MSG))
        self.assertEqual(out, [
            "closed txn=-1 status=tempfail code=0 enh=4.7.4 state=ehlo "
            "text=TLS is required but the server does not offer STARTTLS"])
        self.assertEqual(s.lines, ["EHLO client.test"])

    def test_starttls_refused_required(self):
        s = self.script(ehlo=("PIPELINING", "STARTTLS"),
                        replies={"STARTTLS": "454 4.7.0 TLS not available"})
        out, _, _, _ = drive(s.port, "--tls", "required", "--txn",
                             "a@s.test", "x@r.test", msgfile(MSG))
        self.assertEqual(out, [
            "closed txn=-1 status=tempfail code=454 enh=4.7.0 state=starttls "
            "text=TLS is required but STARTTLS failed: 454 4.7.0 TLS not "
            "available"])
        self.assertEqual(s.lines, ["EHLO client.test", "STARTTLS"])

    def test_starttls_refused_opportunistic_goes_clear(self):
        s = self.script(ehlo=("PIPELINING", "8BITMIME", "STARTTLS"),
                        replies={"STARTTLS": "454 4.7.0 TLS not available"})
        out, _, _, _ = drive(s.port, "--tls", "opportunistic", "--txn",
                             "a@s.test", "x@r.test", msgfile(MSG))
        self.assertTrue(out[0].startswith("ready esmtp=1 tls=0 "), out)
        self.assertIn("delivered txn=0 1/1 conn_lost=0", out)
        # No SIZE advertised here, so no SIZE= parameter.
        self.assertEqual(s.lines[:3], ["EHLO client.test", "STARTTLS",
                                       "MAIL FROM:<a@s.test>"])

    def test_starttls_response_injection_discarded(self):
        s = self.script(tls=True, inject=b"250-injected\r\n250 PIPELINING\r\n")
        out, err, _, _ = drive(s.port, "--tls", "required", "--txn",
                               "a@s.test", "x@r.test", msgfile(MSG))
        self.assertTrue(out[0].startswith("ready esmtp=1 tls=1 "), out)
        self.assertIn("delivered txn=0 1/1 conn_lost=0", out)
        self.assertIn("smtp_client starttls_discard addr=127.0.0.1:%d "
                      "bytes=30" % s.port, err)
        # EHLO again inside TLS, answered by the real reply.
        self.assertEqual(s.lines[:3], ["EHLO client.test", "STARTTLS",
                                       "EHLO client.test"])

    def test_verify_ok(self):
        s = self.script(tls=True)
        out, err, _, _ = drive(s.port, "--tls", "required", "--verify",
                               "mx.test", "--cafile", CERT, "--txn",
                               "a@s.test", "x@r.test", msgfile(MSG))
        self.assertTrue(out[0].startswith("ready esmtp=1 tls=1 verified=1 "),
                        out)
        self.assertIn("delivered txn=0 1/1 conn_lost=0", out)

    def test_verify_wrong_name(self):
        s = self.script(tls=True)
        out, err, _, _ = drive(s.port, "--tls", "required", "--verify",
                               "other.test", "--cafile", CERT, "--txn",
                               "a@s.test", "x@r.test", msgfile(MSG))
        self.assertEqual(out, [
            "closed txn=-1 status=tempfail code=0 enh=4.7.5 "
            "state=tls-handshake text=TLS handshake failed: certificate "
            "verification failed: hostname mismatch"])
        self.assertNotIn("MAIL FROM:<a@s.test>", "\n".join(s.lines))

    def test_verify_untrusted(self):
        s = self.script(tls=True)
        out, _, _, _ = drive(s.port, "--tls", "required", "--verify",
                             "mx.test", "--txn", "a@s.test", "x@r.test",
                             msgfile(MSG))
        self.assertEqual(out, [
            "closed txn=-1 status=tempfail code=0 enh=4.7.5 "
            "state=tls-handshake text=TLS handshake failed: certificate "
            "verification failed: self-signed certificate"])

    def test_implicit_tls(self):
        s, h = self.aio(ssl_context=server_ctx())
        out, _, _, _ = drive(s.port, "--tls", "implicit", "--verify",
                             "mx.test", "--cafile", CERT, "--txn",
                             "a@s.test", "x@r.test", msgfile(MSG))
        self.assertTrue(out[0].startswith("ready esmtp=1 tls=1 verified=1 "),
                        out)
        self.assertIn("delivered txn=0 1/1 conn_lost=0", out)
        self.assertEqual(len(h.messages), 1)

    def test_tls_handshake_failure_is_tempfail(self):
        # A plain server on an implicit-TLS connection.
        s = self.script()
        out, _, _, _ = drive(s.port, "--tls", "implicit", "--timeout", "3",
                             "--txn", "a@s.test", "x@r.test", msgfile(MSG))
        self.assertEqual(len(out), 1, out)
        self.assertTrue(out[0].startswith(
            "closed txn=-1 status=tempfail code=0 enh=4.7.5 "
            "state=tls-handshake text=TLS handshake failed: "), out)

    # AUTH.

    def test_auth_plain_over_starttls(self):
        h = Handler()
        s, _ = self.aio(h, tls_context=server_ctx(),
                        authenticator=h.authenticator, auth_required=True)
        out, err, _, _ = drive(s.port, "--tls", "required", "--auth",
                               "relay-user", "s3cret pw", "--txn",
                               "a@s.test", "x@r.test", msgfile(MSG))
        self.assertTrue(out[0].startswith("ready esmtp=1 tls=1 verified=0 "
                                          "auth=1 "), out)
        self.assertIn("delivered txn=0 1/1 conn_lost=0", out)
        self.assertEqual(h.auth, [("PLAIN", b"relay-user", b"s3cret pw")])
        self.assertNotIn("s3cret", err)
        self.assertNotIn(base64.b64encode(b"\0relay-user\0s3cret pw").decode(),
                         err)

    def test_auth_wrong_password_is_tempfail(self):
        h = Handler()
        s, _ = self.aio(h, tls_context=server_ctx(),
                        authenticator=h.authenticator, auth_required=True)
        out, _, _, _ = drive(s.port, "--tls", "required", "--auth",
                             "relay-user", "wrong", "--txn",
                             "a@s.test", "x@r.test", msgfile(MSG))
        self.assertEqual(out, [
            "closed txn=-1 status=tempfail code=535 enh=5.7.8 state=auth "
            "text=authentication failed: 535 5.7.8 Authentication "
            "credentials invalid"])
        self.assertEqual(h.messages, [])

    def test_auth_login_when_plain_not_offered(self):
        s = self.script(tls=True, auth_login=True,
                        ehlo=("PIPELINING", "8BITMIME", "AUTH LOGIN"))
        out, _, _, _ = drive(s.port, "--tls", "required", "--auth",
                             "relay-user", "s3cret pw", "--txn",
                             "a@s.test", "x@r.test", msgfile(MSG))
        self.assertIn("delivered txn=0 1/1 conn_lost=0", out)
        self.assertEqual(s.creds, [(b"relay-user", b"s3cret pw")])
        self.assertIn("AUTH LOGIN", s.lines)

    def test_auth_never_sent_in_clear(self):
        s = self.script(ehlo=("PIPELINING", "AUTH PLAIN LOGIN"))
        out, _, _, _ = drive(s.port, "--tls", "opportunistic", "--auth",
                             "relay-user", "s3cret pw", "--txn",
                             "a@s.test", "x@r.test", msgfile(MSG))
        self.assertEqual(out, [
            "closed txn=-1 status=tempfail code=0 enh=4.7.4 state=ehlo "
            "text=AUTH is configured but the connection is not encrypted; "
            "credentials are never sent in clear"])
        self.assertEqual(s.lines, ["EHLO client.test"])
        self.assertNotIn(b"s3cret", b"".join(s.chunks))

    def test_auth_without_tls_refused_at_connect(self):
        out, _, _, rc = drive(free_port(), "--auth", "u", "p", "--txn",
                              "a@s.test", "x@r.test", msgfile(MSG))
        self.assertEqual(rc, 1)
        self.assertEqual(out, ["connect refused: AUTH needs TLS: "
                               "credentials are never sent in clear"])

    def test_bad_address_refused(self):
        s = self.script()
        out, _, _, _ = drive(s.port, "--txn", "a@s.test",
                             "x@r.test>\r\nDATA", msgfile(MSG))
        self.assertIn("send refused", out)
        self.assertFalse([l for l in s.lines if l.startswith("MAIL")])


if __name__ == "__main__":
    unittest.main(verbosity=2)
