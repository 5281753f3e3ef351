"""Issue 3 through the real relayd with smtplib: who may send as whom.

A table of header sections (the spoofing techniques published against
providers' sender checks) with the exact reply each gets at the end of
DATA; MAIL FROM ownership; two tenants; wildcard and single-address
grants; and, for every accepted message, the captured envelope senders
(VERP, aligned, decodable, one per recipient) and the fields relayd adds
(Received once and first after the DKIM-Signature fields, Date and
Message-ID only when missing).  Also relayctl explain and the bounce
domain alignment check of relayd -t.
"""
import json
import os
import re
import smtplib
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Relayd, RELAYD, RELAYCTL  # noqa: E402

RCPT = "r@rcpt-domain.org"
NOT_OWNED = "553 5.7.1 <%s>: Sender address rejected: not owned by user %s"
WS_COLON = ("a header field name is followed by white space before its "
            "colon")
SMTPUTF8_NEEDED = "8-bit bytes need SMTPUTF8 (RFC 6531)"
LIST = "the field holds a list of mailboxes; exactly one is allowed"
GROUP = "the field holds a group"
TRAILING = ("unexpected text after the address; the field must hold "
            "exactly one mailbox")

# Each case: (name, header lines before To/Subject, utf8 (SMTPUTF8 on
# MAIL FROM), expected code, enhanced code, distinctive text).  The user
# is alice (grant own-domain.com); MAIL FROM is alice@own-domain.com.
OK = (250, "2.0.0", "Ok: queued as ")
CASES = [
    # Accepted forms.
    ("plain", b"From: alice@own-domain.com", 0) + OK,
    ("display name", b"From: Alice Example <alice@own-domain.com>", 0) + OK,
    ("quoted display name", b'From: "Example, Alice" <alice@own-domain.com>',
     0) + OK,
    ("folded value", b"From:\r\n alice@own-domain.com", 0) + OK,
    ("folded display name", b"From: Alice\r\n\tExample <a@own-domain.com>",
     0) + OK,
    ("upper-case domain", b"From: a@OWN-DOMAIN.COM", 0) + OK,
    ("upper-case field name", b"FROM: a@own-domain.com", 0) + OK,
    ("mixed-case field name", b"fRoM: a@own-domain.com", 0) + OK,
    ("comment with own address", b"From: a@own-domain.com (b@own-domain.com)",
     0) + OK,
    ("owned Sender", b"From: a@own-domain.com\r\nSender: s@own-domain.com",
     0) + OK,
    ("owned Resent-From and Resent-Sender",
     b"From: a@own-domain.com\r\n"
     b"Resent-From: r@own-domain.com\r\nResent-Sender: s@own-domain.com",
     0) + OK,
    ("quoted local part", b'From: "a b"@own-domain.com', 0) + OK,
    ("encoded-word display name", b"From: =?utf-8?q?Al=C3=AFce?= "
     b"<a@own-domain.com>", 0) + OK,
    ("UTF-8 address with SMTPUTF8",
     "From: Alïce <alïce@own-domain.com>".encode(), 1) + OK,
    # Multiple From fields, white space before the colon, folding.
    ("two From fields", b"From: a@own-domain.com\r\nFrom: a@evil.com", 0,
     550, "5.6.0", "From header occurs 2 times; exactly one is allowed"),
    ("two From fields, other case",
     b"From: a@own-domain.com\r\nfrom: a@evil.com", 0,
     550, "5.6.0", "From header occurs 2 times; exactly one is allowed"),
    ("no From field", b"Reply-To: a@own-domain.com", 0,
     550, "5.6.0", "From"),
    ("space before colon", b"From : a@own-domain.com", 0,
     550, "5.6.0", WS_COLON),
    ("second From with space before colon",
     b"From: a@own-domain.com\r\nFrom : x@evil.com", 0,
     550, "5.6.0", WS_COLON),
    ("second From with tab before colon",
     b"From: a@own-domain.com\r\nFrom\t: x@evil.com", 0,
     550, "5.6.0", WS_COLON),
    ("Sender with space before colon",
     b"From: a@own-domain.com\r\nSender : x@own-domain.com", 0,
     550, "5.6.0", WS_COLON),
    ("folded field name", b"From: a@own-domain.com\r\nFr\r\n om: x@evil.com",
     0, 550, "5.6.0", 'a header line is not a valid field ("Name: value")'),
    ("fold hiding a second field",
     b"From: a@own-domain.com\r\n From: x@evil.com", 0,
     550, "5.6.0", GROUP),
    # Multiple mailboxes, groups, empty values.
    ("list", b"From: a@own-domain.com, b@own-domain.com", 0,
     550, "5.6.0", "From header: " + LIST),
    ("list hiding a foreign address", b"From: a@own-domain.com, x@evil.com",
     0, 550, "5.6.0", "From header: " + LIST),
    ("two angle addresses", b"From: <a@own-domain.com> <b@own-domain.com>",
     0, 550, "5.6.0", "the field holds several angle addresses"),
    ("group", b"From: g: a@own-domain.com;", 0, 550, "5.6.0", GROUP),
    ("empty group", b"From: undisclosed:;", 0, 550, "5.6.0", GROUP),
    ("empty value", b"From:", 0, 550, "5.6.0",
     "From header: the field is empty; it must hold one address"),
    ("white space value", b"From:   ", 0, 550, "5.6.0",
     "From header: the field is empty; it must hold one address"),
    ("null address", b"From: <>", 0, 550, "5.6.0",
     "From header: the address <> is empty"),
    ("Sender list", b"From: a@own-domain.com\r\n"
     b"Sender: a@own-domain.com, b@own-domain.com", 0,
     550, "5.6.0", "Sender header: " + LIST),
    ("two Resent-From", b"From: a@own-domain.com\r\nResent-From: "
     b"a@own-domain.com\r\nResent-From: a@own-domain.com", 0,
     550, "5.6.0", "Resent-From header occurs 2 times"),
    # Encoded words, route addresses, trailing junk.
    ("encoded-word in address", b"From: <=?utf-8?q?a?=@own-domain.com>", 0,
     550, "5.6.0", "an encoded-word (=?...?=) is not allowed in the address"),
    ("encoded-word as bare address", b"From: =?utf-8?q?a?=@own-domain.com",
     0, 550, "5.6.0", "an encoded-word (=?...?=) is not allowed"),
    ("route address", b"From: <@evil.com:a@own-domain.com>", 0,
     550, "5.6.0", "a source route (<@host:...>) is not allowed"),
    ("route address of two hops", b"From: <@a.com,@b.com:a@own-domain.com>",
     0, 550, "5.6.0", "From header:"),
    ("trailing word", b"From: <a@own-domain.com> junk", 0,
     550, "5.6.0", TRAILING),
    ("trailing address", b"From: <a@own-domain.com>x@evil.com", 0,
     550, "5.6.0", TRAILING),
    ("space inside address", b"From: a @own-domain.com", 0,
     550, "5.6.0", "white space or a comment is not allowed inside the "
     "address"),
    ("address literal", b"From: a@[127.0.0.1]", 0, 550, "5.6.0",
     "an address literal is not accepted as the domain"),
    ("empty label", b"From: a@own-domain..com", 0, 550, "5.6.0",
     "the domain has an empty label"),
    ("backslash outside quotes", b"From: a\\@x@own-domain.com", 0,
     550, "5.6.0", "the local part mixes quoted and unquoted text"),
    # Comments and quoted pairs: never the address.
    ("comment with own address before foreign",
     b"From: (a@own-domain.com) a@evil.com", 0,
     550, "5.7.1", "From address <a@evil.com> is not owned by user alice"),
    ("comment with foreign address", b"From: a@own-domain.com (x@evil.com)",
     0, 550, "5.7.1", "From display name shows the address x@evil.com, "
     "which user alice does not own"),
    ("comment after angle address",
     b"From: Alice <a@own-domain.com> (x@evil.com)", 0,
     550, "5.7.1", "From display name shows the address x@evil.com"),
    ("quoted pair in quoted local part",
     b'From: "a\\@evil.com"@own-domain.com', 0, 550, "5.7.1",
     "From display name shows the address a@evil.com"),
    # Addresses in display names (default: refused).
    ("address in display name", b'From: "ceo@evil.com" <a@own-domain.com>',
     0, 550, "5.7.1", "From display name shows the address ceo@evil.com, "
     "which user alice does not own"),
    ("address in Q-encoded display name",
     b"From: =?utf-8?q?a=40evil.com?= <a@own-domain.com>", 0,
     550, "5.7.1", "From display name shows the address a@evil.com"),
    ("address in B-encoded display name",
     b"From: =?utf-8?b?Q0VPIDxjZW9AZXZpbC5jb20+?= <a@own-domain.com>", 0,
     550, "5.7.1", "From display name shows the address ceo@evil.com"),
    ("own address in display name",
     b'From: "b@own-domain.com" <a@own-domain.com>', 0) + OK,
    # Quoted local parts containing @.
    ("quoted local part with @", b'From: "a@evil.com"@own-domain.com', 0,
     550, "5.7.1", "From display name shows the address a@evil.com"),
    # Look-alike Unicode domains, case, trailing dots.
    ("Cyrillic a without SMTPUTF8", "From: a@own-domаin.com".encode(), 0,
     550, "5.6.0", SMTPUTF8_NEEDED),
    ("Cyrillic a with SMTPUTF8", "From: a@own-domаin.com".encode(), 1,
     550, "5.7.1", "From address <a@xn--own-domin-6yh.com> is not owned by "
     "user alice"),
    ("A-label look-alike", b"From: a@xn--own-domin-6yh.com", 0,
     550, "5.7.1", "From address <a@xn--own-domin-6yh.com> is not owned"),
    ("ideographic dot", "From: a@own-domain。com".encode(), 1,
     550, "5.6.0", "the domain contains a full-width or ideographic dot"),
    ("full-width dot", "From: a@own-domain．com".encode(), 1,
     550, "5.6.0", "the domain contains a full-width or ideographic dot"),
    ("8-bit local part without SMTPUTF8", "From: aé@own-domain.com".encode(),
     0, 550, "5.6.0", SMTPUTF8_NEEDED),
    ("trailing dot", b"From: a@own-domain.com.", 0, 550, "5.6.0",
     "From header: the domain ends with a dot"),
    ("foreign subdomain", b"From: a@sub.own-domain.com", 0,
     550, "5.7.1", "From address <a@sub.own-domain.com> is not owned"),
    ("own domain as subdomain", b"From: a@own-domain.com.evil.com", 0,
     550, "5.7.1", "From address <a@own-domain.com.evil.com> is not owned"),
    ("own domain as suffix without dot", b"From: a@evil-own-domain.com", 0,
     550, "5.7.1", "From address <a@evil-own-domain.com> is not owned"),
    # The other tenant, and the other sender fields.
    ("other tenant's domain", b"From: a@tenant-b.net", 0,
     550, "5.7.1", "From address <a@tenant-b.net> is not owned by user alice"),
    ("other tenant's domain, upper case", b"From: a@TENANT-B.NET", 0,
     550, "5.7.1", "From address <a@tenant-b.net> is not owned by user alice"),
    ("foreign Sender", b"From: a@own-domain.com\r\nSender: x@evil.com", 0,
     550, "5.7.1", "Sender address <x@evil.com> is not owned by user alice"),
    ("foreign Resent-From",
     b"From: a@own-domain.com\r\nResent-From: x@evil.com", 0,
     550, "5.7.1", "Resent-From address <x@evil.com> is not owned"),
    ("foreign Resent-Sender",
     b"From: a@own-domain.com\r\nResent-Sender: x@tenant-b.net", 0,
     550, "5.7.1", "Resent-Sender address <x@tenant-b.net> is not owned"),
    ("Sender with address in display name",
     b'From: a@own-domain.com\r\nSender: "x@evil.com" <s@own-domain.com>', 0,
     550, "5.7.1", "Sender display name shows the address x@evil.com"),
    ("X-Original-From is not a sender field", b"From: a@own-domain.com\r\n"
     b"X-Original-From: x@evil.com", 0) + OK,
    ("no space after colon", b"From:a@own-domain.com", 0) + OK,
    ("comment after angle address, own", b"From: <a@own-domain.com>\t(c)",
     0) + OK,
    ("empty second From", b"From: a@own-domain.com\r\nFrom:", 0,
     550, "5.6.0", "From header occurs 2 times; exactly one is allowed"),
    ("white space line hiding a second From",
     b"From: a@own-domain.com\r\n \r\nFrom: x@evil.com", 0,
     550, "5.6.0", "a folded header line holds only white space"),
    ("unquoted address in display name",
     b"From: ceo@evil.com <a@own-domain.com>", 0, 550, "5.6.0",
     "the display name contains an unquoted '@'"),
    ("full-width at and dot in display name",
     "From: \"ceo＠evil．com\" <a@own-domain.com>".encode(), 1,
     550, "5.7.1", "From display name shows the address ceo???evil???com"),
    ("full-width at and dot, encoded",
     b"From: =?utf-8?b?Q0VPIGNlb++8oGV2aWzvvI5jb20=?= <a@own-domain.com>",
     0, 550, "5.7.1", "From display name shows the address ceo???evil???com"),
    ("foreign From, owned Sender",
     b"From: x@evil.com\r\nSender: a@own-domain.com", 0,
     550, "5.7.1", "From address <x@evil.com> is not owned by user alice"),
    ("owned Resent-From, foreign Resent-Sender",
     b"From: a@own-domain.com\r\nResent-From: x@own-domain.com\r\n"
     b"Resent-Sender: y@evil.com", 0,
     550, "5.7.1", "Resent-Sender address <y@evil.com> is not owned"),
    ("empty Sender", b"From: a@own-domain.com\r\nSender:", 0,
     550, "5.6.0", "Sender header: the field is empty"),
    ("null Sender", b"From: a@own-domain.com\r\nSender: <>", 0,
     550, "5.6.0", "Sender header: the address <> is empty"),
    # NUL: the DATA framer refuses it before any header parsing.
    ("NUL in From", b"From: a@own-domain.com\0", 0,
     550, "5.6.0", "Message contains NUL characters"),
    ("NUL in display name", b"From: \"x\0\" <a@own-domain.com>", 0,
     550, "5.6.0", "Message contains NUL characters"),
]


def send(h, hdr, utf8=0, user="alice", mail_from=None, rcpts=(RCPT,),
         body=b"Body.\r\n", extra=b"To: r@rcpt-domain.org\r\nSubject: x\r\n"):
    """Send one message with smtplib; (code, text) of the reply to DATA."""
    s = h.client(user=user)
    try:
        s.mail(mail_from if mail_from is not None else
               {"alice": "alice@own-domain.com",
                "bob": "bob@tenant-b.net"}.get(user, ""),
               ["SMTPUTF8"] if utf8 else [])
        for r in rcpts:
            code, text = s.rcpt(r)
            assert code == 250, (r, code, text)
        msg = hdr + b"\r\n" + extra + b"\r\n" + body
        code, text = s.data(msg)
        return code, text.decode("utf-8", "replace")
    finally:
        s.close()


def mail_from_reply(h, addr, user="alice", utf8=0):
    s = h.client(user=user)
    try:
        code, text = s.mail(addr, ["SMTPUTF8"] if utf8 else [])
        return code, text.decode("utf-8", "replace")
    finally:
        s.close()


def captured_one(h, qid, wait=10):
    """(json, eml) of the captured message qid."""
    j = f"{h.capture}/{qid}.json"
    end = time.time() + wait
    while time.time() < end:
        if os.path.exists(j) and os.path.exists(j[:-5] + ".eml"):
            try:
                with open(j) as f:
                    meta = json.load(f)
                with open(j[:-5] + ".eml", "rb") as f:
                    return meta, f.read()
            except ValueError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"{qid} not captured; log:\n{h.tail()}")


def header_of(eml):
    return eml.split(b"\r\n\r\n", 1)[0] + b"\r\n"


def fields(head, name):
    """Values of every field called name (unfolded, any case)."""
    out = []
    for m in re.finditer(rb"(?im)^" + re.escape(name) +
                         rb":((?:[^\r\n]*\r\n)(?:[ \t][^\r\n]*\r\n)*)", head):
        out.append(re.sub(rb"\r\n", b"", m.group(1)).strip())
    return out


class Base(unittest.TestCase):
    sections = None
    users = None

    @classmethod
    def setUpClass(cls):
        cls.h = Relayd(sections=cls.sections, users=cls.users)
        try:
            cls.h.start()
        except Exception:
            cls.h.cleanup()
            raise
        cls.key = harness.verp_key(cls.h.dir + "/secret")

    @classmethod
    def tearDownClass(cls):
        cls.h.cleanup()

    def assertReply(self, got, code, status, text):
        gcode, gtext = got
        self.assertEqual(gcode, code, gtext)
        self.assertTrue(gtext.startswith(status + " "), gtext)
        self.assertIn(text, gtext)

    def assertAccepted(self, got):
        code, text = got
        self.assertEqual(code, 250, text)
        qid = harness.queued_id(text)
        self.assertIsNotNone(qid, text)
        return qid

    def check_accepted(self, qid, rcpts, from_domain, show_client=False,
                       had_date=True, had_msgid=True, mail_from=None):
        """The captured message qid: one VERP sender per recipient that
        decodes to (qid, index), distinct; Received once, first after the
        DKIM-Signature fields; Date and Message-ID as they should be."""
        meta, eml = captured_one(self.h, qid)
        self.assertEqual(meta["id"], qid)
        self.assertEqual([r["rcpt"] for r in meta["recipients"]], list(rcpts))
        senders = [r["mail_from"] for r in meta["recipients"]]
        if mail_from == "":
            self.assertEqual(senders, [""] * len(rcpts))
        else:
            self.assertEqual(len(set(senders)), len(rcpts), senders)
            for i, snd in enumerate(senders):
                self.assertRegex(snd, "^" + harness.VERP_RE + "$")
                local = snd.split("@", 1)[0]
                self.assertEqual(harness.verp_decode(self.key, local),
                                 (qid.lower(), i), snd)
        sigs, received, rest = harness.split_added(eml)
        head = header_of(eml)
        self.assertEqual(len(fields(head, b"Received")), 1, head)
        self.assertEqual(len(re.findall(rb"(?im)^dkim-signature:", sigs)),
                         len(re.findall(rb"(?im)^dkim-signature:", head)))
        for d in re.findall(rb"\bd=([^;\s]+)", sigs):
            self.assertEqual(d.decode(),
                             "own-domain.com" if from_domain.endswith(
                                 "own-domain.com") else from_domain)
        if show_client:
            self.assertIn(b"127.0.0.1", received)
        else:
            self.assertNotIn(b"127.0.0.1", received)
        self.assertIn(b"by relay.test (relayd)", received)
        dates = fields(head, b"Date")
        mids = fields(head, b"Message-ID")
        self.assertEqual(len(dates), 1, head)
        self.assertEqual(len(mids), 1, head)
        if not had_msgid:
            self.assertRegex(mids[0].decode(),
                             r"^<[^@<>\s]+@" + re.escape(from_domain) + ">$")
            self.assertIn(b"Message-ID: " + mids[0] + b"\r\n", rest)
        if not had_date:
            self.assertRegex(dates[0].decode(),
                             r"^[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} "
                             r"\d\d:\d\d:\d\d \+0000$")
        return meta, eml


class TestHeaderTable(Base):
    def test_from_in_body(self):
        got = send(self.h, b"From: a@own-domain.com",
                   body=b"From: x@evil.com\r\n")
        self.assertAccepted(got)

    def test_table(self):
        self.assertGreaterEqual(len(CASES), 40)
        for name, hdr, utf8, code, status, text in CASES:
            with self.subTest(name):
                got = send(self.h, hdr, utf8)
                self.assertReply(got, code, status, text)
                if code == 250:
                    self.check_accepted(harness.queued_id(got[1]), [RCPT],
                                        "own-domain.com", had_date=False,
                                        had_msgid=False)


class TestDisplayNameHidden(Base):
    """Display names that readers show as ceo@evil.com or "ceo"@evil.com
    although no plain atext@domain is in the raw bytes: a quoted local
    part, and UTF-16 and UTF-7 encoded-words (relayd decodes every
    charset to UTF-8 before it looks, and refuses one it cannot read)."""

    def test_refused(self):
        for hdr in (b'From: "\\"ceo\\"@evil.com" <a@own-domain.com>',
                    b"From: =?utf-16be?b?AGMAZQBvAEAAZQB2AGkAbAAuAGMAbwBt?= "
                    b"<a@own-domain.com>",
                    b"From: =?utf-7?q?ceo+AEA-evil.com?= <a@own-domain.com>"):
            with self.subTest(hdr):
                got = send(self.h, hdr)
                self.assertEqual(got[0], 550, got)
                self.assertTrue(got[1].startswith("5.7.1 From display name "
                                                  "shows the address"), got)

    def test_unreadable_charset(self):
        got = send(self.h, b"From: =?x-unheard-of?q?boss?= <a@own-domain.com>")
        self.assertEqual(got[0], 550, got)
        self.assertTrue(got[1].startswith("5.6.0 From header: the display "
                                          "name has an encoded-word in a "
                                          "charset that cannot be read"), got)


class TestMailFrom(Base):
    def test_owned(self):
        for addr in ("alice@own-domain.com", "x@own-domain.com",
                     "x@OWN-DOMAIN.COM", "X@Own-Domain.Com",
                     '"a b"@own-domain.com', '"a@evil.com"@own-domain.com'):
            with self.subTest(addr):
                code, text = mail_from_reply(self.h, addr)
                self.assertEqual((code, text), (250, "2.1.0 Ok"))

    def test_not_owned(self):
        for addr in ("x@tenant-b.net", "x@evil.com", "x@sub.own-domain.com",
                     "x@own-domain.com.evil.com", "x@evil-own-domain.com",
                     "x@xn--own-domin-6yh.com"):
            with self.subTest(addr):
                code, text = mail_from_reply(self.h, addr)
                self.assertEqual(f"{code} {text}",
                                 NOT_OWNED % (addr, "alice"))

    def test_trailing_dot(self):
        # RFC 5321 4.1.2: a Domain has no trailing dot; a syntax error.
        for addr in ("alice@own-domain.com.", "alice@OWN-DOMAIN.COM."):
            with self.subTest(addr):
                self.assertEqual(mail_from_reply(self.h, addr),
                                 (501, "5.1.7 Bad sender address syntax"))

    def test_look_alike_with_smtputf8(self):
        addr = "x@own-domаin.com"       # Cyrillic a
        code, text = mail_from_reply(self.h, addr, utf8=1)
        self.assertEqual(code, 553, text)
        self.assertTrue(text.startswith("5.7.1 <x@own-dom??in.com>: Sender "
                                        "address rejected: not owned by "
                                        "user alice"), text)

    def test_null_sender_stays_null(self):
        s = self.h.client()
        try:
            self.assertEqual(s.mail(""), (250, b"2.1.0 Ok"))
            self.assertEqual(s.rcpt(RCPT)[0], 250)
            self.assertEqual(s.rcpt("s@rcpt-domain.org")[0], 250)
            code, text = s.data(b"From: alice@own-domain.com\r\nTo: "
                                b"r@rcpt-domain.org\r\nSubject: receipt\r\n"
                                b"\r\nRead.\r\n")
        finally:
            s.close()
        qid = self.assertAccepted((code, text.decode()))
        meta, _ = self.check_accepted(qid, [RCPT, "s@rcpt-domain.org"],
                                      "own-domain.com", had_date=False,
                                      had_msgid=False, mail_from="")
        self.assertEqual([r["mail_from"] for r in meta["recipients"]],
                         ["", ""])


class TestTenants(Base):
    def test_mail_from_cross(self):
        for user, addr in (("alice", "bob@tenant-b.net"),
                           ("bob", "alice@own-domain.com")):
            with self.subTest(user):
                code, text = mail_from_reply(self.h, addr, user=user)
                self.assertEqual(f"{code} {text}", NOT_OWNED % (addr, user))

    def test_from_cross(self):
        got = send(self.h, b"From: bob@tenant-b.net", user="alice")
        self.assertReply(got, 550, "5.7.1", "From address <bob@tenant-b.net> "
                         "is not owned by user alice")
        got = send(self.h, b"From: alice@own-domain.com", user="bob")
        self.assertReply(got, 550, "5.7.1", "From address "
                         "<alice@own-domain.com> is not owned by user bob")

    def test_each_own(self):
        qid = self.assertAccepted(send(self.h, b"From: bob@tenant-b.net",
                                       user="bob"))
        meta, eml = captured_one(self.h, qid)
        snd = meta["recipients"][0]["mail_from"]
        self.assertRegex(snd, r"^b\.[a-z2-7]{36}@bounces\.tenant-b\.net$")
        self.assertEqual(harness.verp_decode(self.key, snd.split("@")[0]),
                         (qid, 0))
        sigs = harness.split_added(eml)[0]
        self.assertEqual(re.findall(rb"\bd=([^;\s]+)", sigs),
                         [b"tenant-b.net"])


class TestAccepted(Base):
    RCPTS = ["r1@rcpt-domain.org", "r2@rcpt-domain.org", "r3@example.net"]

    def test_verp_per_recipient_and_added_fields(self):
        got = send(self.h, b"From: Alice <alice@own-domain.com>",
                   rcpts=self.RCPTS)
        qid = self.assertAccepted(got)
        self.check_accepted(qid, self.RCPTS, "own-domain.com",
                            had_date=False, had_msgid=False)

    def test_date_and_message_id_kept(self):
        hdr = (b"From: alice@own-domain.com\r\n"
               b"Date: Sun, 22 Nov 2026 12:00:00 +0000\r\n"
               b"Message-ID: <kept.1@client.example>")
        qid = self.assertAccepted(send(self.h, hdr))
        _, eml = self.check_accepted(qid, [RCPT], "own-domain.com")
        head = header_of(eml)
        self.assertEqual(fields(head, b"Date"),
                         [b"Sun, 22 Nov 2026 12:00:00 +0000"])
        self.assertEqual(fields(head, b"Message-ID"),
                         [b"<kept.1@client.example>"])
        # Nothing added after the Received field.
        self.assertTrue(harness.as_submitted(eml).startswith(hdr))

    def test_lower_case_date_and_message_id_kept(self):
        hdr = (b"From: alice@own-domain.com\r\n"
               b"date: Sun, 22 Nov 2026 12:00:00 +0000\r\n"
               b"message-id: <kept.2@client.example>")
        qid = self.assertAccepted(send(self.h, hdr))
        _, eml = self.check_accepted(qid, [RCPT], "own-domain.com")
        self.assertTrue(harness.as_submitted(eml).startswith(hdr))

    def test_only_date_missing(self):
        hdr = b"From: alice@own-domain.com\r\nMessage-ID: <k.3@x.example>"
        qid = self.assertAccepted(send(self.h, hdr))
        _, eml = self.check_accepted(qid, [RCPT], "own-domain.com",
                                     had_date=False)
        rest = harness.as_submitted(eml)
        self.assertTrue(rest.startswith(b"Date: "), rest[:80])
        self.assertEqual(fields(header_of(eml), b"Message-ID"),
                         [b"<k.3@x.example>"])

    def test_explain(self):
        r = subprocess.run([RELAYCTL, "-c", self.h.conf, "explain", "alice",
                            "alice@own-domain.com"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("allowed: user alice may use From alice@own-domain.com",
                      r.stdout)
        self.assertIn("  grant: own-domain.com\n", r.stdout)
        self.assertIn("  signing domain: d=own-domain.com", r.stdout)
        self.assertIn("  bounce domain: bounces.own-domain.com\n", r.stdout)
        self.assertRegex(r.stdout, r"s=r2026 a=rsa-sha256")
        self.assertRegex(r.stdout, r"s=e2026 a=ed25519-sha256")
        self.assertRegex(r.stdout, harness.VERP_RE)
        r = subprocess.run([RELAYCTL, "-c", self.h.conf, "explain", "alice",
                            "x@tenant-b.net"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("refused: user alice may not use From x@tenant-b.net",
                      r.stdout)
        self.assertIn("reply: 550 5.7.1 From address <x@tenant-b.net> is not "
                      "owned by user alice", r.stdout)
        self.assertIn("grants: own-domain.com\n", r.stdout)


class TestShowClient(Base):
    sections = {"policy": {"received_client": "show"}}

    def test_received_shows_client(self):
        qid = self.assertAccepted(send(self.h, b"From: alice@own-domain.com"))
        _, eml = self.check_accepted(qid, [RCPT], "own-domain.com",
                                     show_client=True, had_date=False,
                                     had_msgid=False)
        received = harness.split_added(eml)[1]
        self.assertIn(b"[127.0.0.1]", received)


class TestDisplayNameAllowed(Base):
    sections = {"policy": {"display_name_address": "allow"}}

    def test_allowed(self):
        for hdr in (b'From: "ceo@evil.com" <a@own-domain.com>',
                    b"From: a@own-domain.com (x@evil.com)",
                    b"From: =?utf-8?q?a=40evil.com?= <a@own-domain.com>"):
            with self.subTest(hdr):
                self.assertAccepted(send(self.h, hdr))

    def test_still_not_owned(self):
        got = send(self.h, b'From: "a@own-domain.com" <x@evil.com>')
        self.assertReply(got, 550, "5.7.1", "From address <x@evil.com> is "
                         "not owned by user alice")


class TestGrants(Base):
    users = {"alice": ("alice-pw", "own-domain.com"),
             "wild": ("wild-pw", "*.own-domain.com"),
             "single": ("single-pw", "news@own-domain.com"),
             "bob": ("bob-pw", "tenant-b.net")}

    def test_wildcard(self):
        for addr in ("x@sub.own-domain.com", "x@a.b.own-domain.com",
                     "x@SUB.Own-Domain.com"):
            with self.subTest(addr):
                self.assertEqual(mail_from_reply(self.h, addr, user="wild"),
                                 (250, "2.1.0 Ok"))
        for addr in ("x@own-domain.com", "x@subown-domain.com",
                     "x@tenant-b.net"):
            with self.subTest(addr):
                code, text = mail_from_reply(self.h, addr, user="wild")
                self.assertEqual(f"{code} {text}", NOT_OWNED % (addr, "wild"))
        got = send(self.h, b"From: x@own-domain.com", user="wild",
                   mail_from="x@sub.own-domain.com")
        self.assertReply(got, 550, "5.7.1", "From address <x@own-domain.com> "
                         "is not owned by user wild")
        # A subdomain signs with the parent's section: d=own-domain.com,
        # Message-ID at the From domain, bounces at the parent's.
        got = send(self.h, b"From: News <x@mail.own-domain.com>",
                   user="wild", mail_from="x@mail.own-domain.com",
                   rcpts=(RCPT, "s@rcpt-domain.org"))
        qid = self.assertAccepted(got)
        self.check_accepted(qid, [RCPT, "s@rcpt-domain.org"],
                            "mail.own-domain.com", had_date=False,
                            had_msgid=False)

    def test_single_address(self):
        self.assertEqual(mail_from_reply(self.h, "news@own-domain.com",
                                         user="single"), (250, "2.1.0 Ok"))
        for addr in ("News@own-domain.com", "other@own-domain.com",
                     "news@sub.own-domain.com"):
            with self.subTest(addr):
                code, text = mail_from_reply(self.h, addr, user="single")
                self.assertEqual(f"{code} {text}",
                                 NOT_OWNED % (addr, "single"))
        qid = self.assertAccepted(send(self.h, b"From: news@OWN-DOMAIN.com",
                                       user="single",
                                       mail_from="news@own-domain.com"))
        self.check_accepted(qid, [RCPT], "own-domain.com", had_date=False,
                            had_msgid=False)
        got = send(self.h, b"From: other@own-domain.com", user="single",
                   mail_from="news@own-domain.com")
        self.assertReply(got, 550, "5.7.1", "From address "
                         "<other@own-domain.com> is not owned by user single")
        got = send(self.h, b"From: news@own-domain.com\r\n"
                   b"Sender: other@own-domain.com", user="single",
                   mail_from="news@own-domain.com")
        self.assertReply(got, 550, "5.7.1", "Sender address "
                         "<other@own-domain.com> is not owned by user single")


class TestBounceDomainFollowsFrom(Base):
    users = {"alice": ("alice-pw", "own-domain.com,tenant-b.net")}

    def test_from_domain_decides(self):
        # MAIL FROM at one owned domain, From at the other: the envelope
        # senders and d= follow the From domain (DMARC alignment).
        got = send(self.h, b"From: a@tenant-b.net",
                   mail_from="alice@own-domain.com",
                   rcpts=(RCPT, "s@rcpt-domain.org"))
        qid = self.assertAccepted(got)
        meta, eml = captured_one(self.h, qid)
        senders = [r["mail_from"] for r in meta["recipients"]]
        self.assertEqual(len(set(senders)), 2, senders)
        for i, snd in enumerate(senders):
            self.assertRegex(snd, r"^b\.[a-z2-7]{36}@bounces\.tenant-b\.net$")
            self.assertEqual(harness.verp_decode(self.key,
                                                 snd.split("@")[0]), (qid, i))
        sigs = harness.split_added(eml)[0]
        self.assertEqual(re.findall(rb"\bd=([^;\s]+)", sigs),
                         [b"tenant-b.net"])
        self.assertRegex(fields(header_of(eml), b"Message-ID")[0].decode(),
                         r"^<[^@]+@tenant-b\.net>$")


class TestGrantWithoutSection(Base):
    users = {"alice": ("alice-pw", "own-domain.com,unsigned.example")}

    def test_no_signing_domain(self):
        self.assertEqual(mail_from_reply(self.h, "a@unsigned.example"),
                         (250, "2.1.0 Ok"))
        got = send(self.h, b"From: a@unsigned.example",
                   mail_from="a@unsigned.example")
        self.assertReply(got, 550, "5.7.1", "No DKIM key for the From domain "
                         "unsigned.example on this relay")


class TestMisalignedBounceDomain(unittest.TestCase):
    def test_refused_by_check(self):
        h = Relayd(sections={"domain own-domain.com":
                             {"bounce_domain": "bounces.other.org"}})
        try:
            r = subprocess.run([RELAYD, "-c", h.conf, "-t"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("bounce_domain: bounces.other.org does not share "
                          "the organizational domain own-domain.com",
                          r.stdout + r.stderr)
        finally:
            h.cleanup()


if __name__ == "__main__":
    harness.main()
