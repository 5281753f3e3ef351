"""The c-ares resolver (common/dns.c) against a real DNS server: dnsmasq
on a loopback port, authoritative for .test, plus two tiny UDP servers of
our own, one answering SERVFAIL to everything and one never answering.
Driven through tests/dns_drive (built next to RELAYD).

Run with Debian's /usr/bin/python3.
"""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import free_port, RELAYD  # noqa: E402

DRIVE = os.environ.get("DNS_DRIVE", os.path.join(
    os.path.dirname(os.path.abspath(RELAYD)), "tests", "dns_drive"))


class UdpResponder:
    """Answers every query with rcode (SERVFAIL = 2), or never (None)."""

    def __init__(self, rcode):
        self.rcode = rcode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                q, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.queries += 1
            if self.rcode is None or len(q) < 12:
                continue
            hdr = q[:2] + bytes([0x80 | (q[2] & 0x79), 0x80 | self.rcode])
            hdr += q[4:6] + b"\0\0\0\0\0\0"
            # The question only: QNAME labels, QTYPE, QCLASS.
            i = 12
            while i < len(q) and q[i] != 0:
                i += q[i] + 1
            self.sock.sendto(hdr + q[12:i + 5], addr)

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


class Dnsmasq:
    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="relayd-dns-")
        args = [
            "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
            "--port=%d" % self.port, "--listen-address=127.0.0.1",
            "--bind-interfaces", "--local=/test/", "--log-facility=-",
            "--pid-file=" + os.path.join(self.dir, "pid"), "--log-queries",
            "--mx-host=mx.test,mx1.mx.test,10",
            "--mx-host=mx.test,mx2.mx.test,10",
            "--mx-host=mx.test,mx3.mx.test,5",
            "--host-record=mx1.mx.test,127.0.0.1",
            "--host-record=mx2.mx.test,127.0.0.2,::1",
            "--mx-host=null.test,.,0",
            "--mx-host=noaddr.test,mxa.noaddr.test,10",
            "--host-record=nomx.test,127.0.0.5",
            "--mx-host=dotted.test,mx1.mx.test.,1",
            "--txt-record=txt.test,v=spf1 -all",
            "--txt-record=multi.test,v=DKIM1; k=rsa; ,p=ABC",
            "--txt-record=two.test,first",
            "--txt-record=two.test,second",
        ]
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        end = time.time() + 10
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("dnsmasq exited")
            if self.answers():
                return
            time.sleep(0.05)
        raise RuntimeError("dnsmasq did not start")

    def answers(self):
        r = subprocess.run(["dig", "+time=1", "+tries=1", "-p",
                            str(self.port), "@127.0.0.1", "txt", "txt.test"],
                           capture_output=True, text=True)
        return "v=spf1" in r.stdout

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


def drive(server, qtype, name, timeout_ms=0, mode="normal"):
    r = subprocess.run([DRIVE, server, qtype, name, str(timeout_ms), mode],
                       capture_output=True, text=True, timeout=30)
    # Under -Db_sanitize=address,undefined any report fails the test.
    if "Sanitizer" in r.stderr or "runtime error:" in r.stderr:
        raise AssertionError("sanitizer report:\n" + r.stderr)
    return r.returncode, r.stdout.splitlines()


class DnsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = Dnsmasq()
        cls.server = "127.0.0.1:%d" % cls.dns.port

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def lookup(self, qtype, name, **kw):
        rc, out = drive(self.server, qtype, name, **kw)
        self.assertEqual(rc, 0, out)
        self.assertNotIn("BUG callback after cancel", out)
        return out

    def test_mx_order_and_addresses(self):
        # mx3 (preference 5) has no address and is skipped; mx1 and mx2
        # (10) come in either order; mx2's IPv6 address first.
        seen = set()
        for _ in range(30):
            out = self.lookup("mx", "mx.test")
            self.assertEqual(out[0], "status ok enhanced - implicit 0")
            hosts = sorted(out[2:])
            self.assertEqual(hosts, [
                "host mx1.mx.test 10 127.0.0.1:25",
                "host mx2.mx.test 10 [::1]:25 127.0.0.2:25"])
            seen.add(out[2].split()[1])
            if len(seen) == 2:
                break
        self.assertEqual(seen, {"mx1.mx.test", "mx2.mx.test"})

    def test_implicit_mx(self):
        out = self.lookup("mx", "nomx.test")
        self.assertEqual(out, ["status ok enhanced - implicit 1", "reason ",
                               "host nomx.test 0 127.0.0.5:25"])

    def test_final_dot_in_query(self):
        out = self.lookup("mx", "nomx.test.")
        self.assertEqual(out[2], "host nomx.test 0 127.0.0.5:25")

    def test_mx_target_with_final_dot(self):
        out = self.lookup("mx", "dotted.test")
        self.assertEqual(out[2:], ["host mx1.mx.test 1 127.0.0.1:25"])

    def test_null_mx(self):
        out = self.lookup("mx", "null.test")
        self.assertEqual(out, [
            "status permfail enhanced 5.1.10 implicit 0",
            "reason null.test does not accept mail (null MX, RFC 7505)"])

    def test_nxdomain(self):
        out = self.lookup("mx", "nx.test")
        self.assertEqual(out, [
            "status permfail enhanced 5.1.2 implicit 0",
            "reason MX lookup for nx.test: domain does not exist "
            "(NXDOMAIN)"])

    def test_no_address_for_any_host(self):
        out = self.lookup("mx", "noaddr.test")
        self.assertEqual(out, [
            "status tempfail enhanced 4.4.3 implicit 0",
            "reason no address for any MX host of noaddr.test "
            "(address lookup for mxa.noaddr.test: domain does not exist "
            "(NXDOMAIN))"])

    def test_txt(self):
        self.assertEqual(self.lookup("txt", "txt.test"), [
            "status ok enhanced - implicit 0", "reason ", "txt v=spf1 -all"])
        # Character strings of one record are joined.
        self.assertEqual(self.lookup("txt", "multi.test")[2:],
                         ["txt v=DKIM1; k=rsa; p=ABC"])
        self.assertEqual(sorted(self.lookup("txt", "two.test")[2:]),
                         ["txt first", "txt second"])

    def test_txt_none_and_nxdomain(self):
        self.assertEqual(self.lookup("txt", "nomx.test"),
                         ["status ok enhanced - implicit 0", "reason "])
        self.assertEqual(self.lookup("txt", "nx.test"), [
            "status permfail enhanced 5.1.2 implicit 0",
            "reason TXT lookup for nx.test: domain does not exist "
            "(NXDOMAIN)"])

    def test_cancel(self):
        out = self.lookup("mx", "nomx.test", mode="cancel")
        self.assertEqual(out, ["status ok enhanced - implicit 1", "reason ",
                               "host nomx.test 0 127.0.0.5:25",
                               "pending 0"])

    def test_free_with_queries_sent(self):
        out = self.lookup("mx", "mx.test", mode="free")
        self.assertEqual(out, ["pending 2", "freed"])

    def test_servfail(self):
        r = UdpResponder(2)
        try:
            rc, out = drive("127.0.0.1:%d" % r.port, "mx", "a.test", 500)
        finally:
            r.close()
        self.assertEqual(rc, 0)
        self.assertEqual(out, [
            "status tempfail enhanced 4.4.3 implicit 0",
            "reason MX lookup for a.test: no usable answer from the DNS "
            "servers (SERVFAIL, REFUSED or unreachable)"])
        self.assertGreaterEqual(r.queries, 1)

    def test_refused_by_dnsmasq(self):
        # dnsmasq refuses names outside its zones (--no-resolv).
        out = self.lookup("mx", "example.com")
        self.assertEqual(out, [
            "status tempfail enhanced 4.4.3 implicit 0",
            "reason MX lookup for example.com: no usable answer from the "
            "DNS servers (SERVFAIL, REFUSED or unreachable)"])

    def test_no_server_listening(self):
        rc, out = drive("127.0.0.1:%d" % free_port(), "mx", "a.test", 300)
        self.assertEqual(out[0], "status tempfail enhanced 4.4.3 implicit 0")

    def test_timeout(self):
        r = UdpResponder(None)
        try:
            t0 = time.time()
            rc, out = drive("127.0.0.1:%d" % r.port, "mx", "a.test", 300)
            took = time.time() - t0
        finally:
            r.close()
        self.assertEqual(out, [
            "status tempfail enhanced 4.4.3 implicit 0",
            "reason MX lookup for a.test: timed out"])
        self.assertLess(took, 5)
        self.assertGreaterEqual(r.queries, 1)

    def test_free_while_waiting(self):
        r = UdpResponder(None)
        try:
            rc, out = drive("127.0.0.1:%d" % r.port, "mx", "a.test", 2000,
                            "freelater")
        finally:
            r.close()
        self.assertEqual(out, ["pending 2", "freed"])

    def test_bad_servers(self):
        rc, out = drive("not-an-ip", "mx", "a.test")
        self.assertEqual(rc, 1)
        self.assertTrue(out[0].startswith(
            'dns_new failed: [dns] servers "not-an-ip": '), out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
