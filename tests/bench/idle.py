#!/usr/bin/python3
"""idle: hold many idle SMTP connections to relayd and report its VmRSS.

    idle.py --port P --pid RELAYD_PID [--count 10000] [--sources 8] [--hold 3]

Connections come from 127.0.0.1 .. 127.0.0.N (--sources) in turn, so a
connections_per_ip limit can stay moderate; relayd must allow --count
connections in total (max_connections, its RLIMIT_NOFILE).  Raises this
process's RLIMIT_NOFILE to its hard limit.  Prints how many connections got
the 220 banner, how many are still open after --hold seconds, and relayd's
VmRSS before and with them.  A benchmark, not a test.
"""
import argparse
import resource
import select
import socket
import sys
import time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--sources", type=int, default=8)
    ap.add_argument("--hold", type=float, default=3.0)
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        soft = min(want, hard)
    if soft < want:
        print(f"idle: RLIMIT_NOFILE hard limit {hard} < {want}", file=sys.stderr)
        return 1

    before = rss_kb(a.pid)
    socks = []
    t0 = time.monotonic()
    failed = 0
    for i in range(a.count):
        src = f"127.0.0.{1 + i % a.sources}"
        try:
            s = socket.create_connection((a.host, a.port), 10, source_address=(src, 0))
            s.setblocking(False)
            socks.append(s)
        except OSError as e:
            failed += 1
            if failed == 1:
                print(f"idle: connect {i} failed: {e}", file=sys.stderr)
            if failed > 100:
                break
    t_conn = time.monotonic() - t0

    # Read the banners (bounded wait), then hold.
    banners = 0
    pending = {s.fileno(): s for s in socks}
    got = {}
    end = time.monotonic() + 30
    poller = select.poll()
    for fd in pending:
        poller.register(fd, select.POLLIN)
    while pending and time.monotonic() < end:
        for fd, ev in poller.poll(500):
            s = pending.pop(fd, None)
            poller.unregister(fd)
            if s is None:
                continue
            try:
                d = s.recv(512)
            except OSError:
                d = b""
            got[fd] = d
            if d.startswith(b"220"):
                banners += 1
    time.sleep(a.hold)
    with_conns = rss_kb(a.pid)

    still = 0
    for s in socks:
        try:
            d = s.recv(512)
            if d:
                still += 1
        except BlockingIOError:
            still += 1
        except OSError:
            pass
    print(f"idle: {len(socks)} connections opened in {t_conn:.1f} s "
          f"({failed} failed), {banners} got 220, {still} still open "
          f"after {a.hold:.0f} s")
    print(f"idle: relayd VmRSS {before} KiB before, {with_conns} KiB with "
          f"{len(socks)} connections ({(with_conns - before) / max(len(socks), 1):.1f} "
          f"KiB per connection, {with_conns / 1024:.0f} MiB total)")
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
