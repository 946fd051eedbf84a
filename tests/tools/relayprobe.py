#!/usr/bin/env python3
"""relayprobe: measures build/tools/delayrelay from outside (issue 11).

  relayprobe.py RELAY_BINARY

Runs echo servers (UDP and TCP) on 127.0.0.1 in this process, starts the
relay in front of them with given delays, and measures round trips with
time.monotonic() at the client: the relay's added RTT is the median
through the relay minus the median straight to the echo server. Checks
that bytes come back unchanged (each reply against its request, and the
SHA-256 of everything the echo server received against what was sent)
and prints TAP lines ("ok - ..." / "not ok - ...") with the values.
"""
import hashlib
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

RELAY = sys.argv[1]
TOL_MS = float(os.environ.get("RELAY_TOL_MS", "5"))  # load on 2 cores
results = []


def check(name, cond, detail):
    print(("ok - " if cond else "not ok - ") + name + ": " + detail,
          flush=True)
    results.append(cond)


class UdpEcho(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.port = self.s.getsockname()[1]
        self.h = {}  # source address -> sha256 of what it sent, in order
        self.sources = set()

    def run(self):
        while True:
            d, a = self.s.recvfrom(65536)
            self.h.setdefault(a, hashlib.sha256()).update(d)
            self.s.sendto(d, a)


class TcpEcho(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(8)
        self.port = self.s.getsockname()[1]
        self.digests = []

    def conn(self, c):
        h, n = hashlib.sha256(), 0
        while True:
            d = c.recv(65536)
            if not d:
                break
            h.update(d)
            n += len(d)
            c.sendall(d)
        c.close()
        self.digests.append((n, h.hexdigest()))

    def run(self):
        while True:
            c, _ = self.s.accept()
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self.conn, args=(c,), daemon=True).start()


def relay(args):
    d = tempfile.mkdtemp(prefix="relayprobe.")
    ready = os.path.join(d, "ready")
    p = subprocess.Popen([RELAY, "--ready", ready] + args,
                         stderr=subprocess.PIPE, text=True)
    for _ in range(200):
        if os.path.exists(ready):
            break
        time.sleep(0.01)
    with open(ready) as f:
        lines = [l.split() for l in f]
    os.unlink(ready)
    os.rmdir(d)
    ports = [int(l[1].rsplit(":", 1)[1]) for l in lines]
    return p, ports


def stop(p):
    p.terminate()
    _, err = p.communicate(timeout=10)
    return err.strip()


def udp_pings(port, n, rng, sock=None):
    s = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    rtts, bad, sent = [], 0, hashlib.sha256()
    for _ in range(n):
        msg = rng.randbytes(rng.randint(1, 1400))
        sent.update(msg)
        t0 = time.monotonic()
        s.sendto(msg, ("127.0.0.1", port))
        got = s.recv(65536)
        rtts.append((time.monotonic() - t0) * 1e3)
        bad += got != msg
        time.sleep(0.002)
    return rtts, bad, sent.hexdigest(), s.getsockname()


def tcp_pings(port, n, rng):
    c = socket.create_connection(("127.0.0.1", port))
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rtts, bad = [], 0
    for _ in range(n):
        msg = rng.randbytes(rng.randint(1, 1000))
        t0 = time.monotonic()
        c.sendall(msg)
        got = b""
        while len(got) < len(msg):
            got += c.recv(65536)
        rtts.append((time.monotonic() - t0) * 1e3)
        bad += got != msg
        time.sleep(0.002)
    c.close()
    return rtts, bad


def fmt(v):
    return "median %.2f min %.2f max %.2f ms" % (
        statistics.median(v), min(v), max(v))


def check_added(proto, d, rtts, base):
    """The added RTT of one-way delay d: median within [2d, 2d + TOL_MS]
    over the direct median, and no round trip under 2d."""
    added = statistics.median(rtts) - statistics.median(base)
    check("%s -d %g: added RTT median within [%g, %g+%g] ms"
          % (proto, d, 2 * d, 2 * d, TOL_MS),
          2 * d <= added <= 2 * d + TOL_MS,
          "added %.2f ms (relay %s; direct %s)" % (added, fmt(rtts), fmt(base)))
    check("%s -d %g: no round trip shorter than %g ms" % (proto, d, 2 * d),
          min(rtts) >= 2 * d, "min %.2f ms" % min(rtts))


def test_udp_delay(echo, rng):
    base, _, _, _ = udp_pings(echo.port, 30, rng)
    p, (port,) = relay(["-d", "10", "-u", "127.0.0.1:0=127.0.0.1:%d" % echo.port])
    rtts, bad, sent, me = udp_pings(port, 40, rng)
    stats = stop(p)
    check_added("udp", 10, rtts, base)
    check("udp: every reply equals its request", bad == 0, "%d differ" % bad)
    # the echo server saw the relay's upstream socket, not our address
    srcs = [a for a in echo.h if a != me]
    check("udp: the echo server received exactly the bytes sent (sha256)",
          len(srcs) >= 1 and any(echo.h[a].hexdigest() == sent for a in srcs),
          "sent %s..." % sent[:16])
    check("udp: relay counted 40 datagrams each way",
          "forward 40 pkts" in stats and "back 40 pkts" in stats, stats)


def test_udp_flows(echo, rng):
    p, (port,) = relay(["-d", "5", "-u", "127.0.0.1:0=127.0.0.1:%d" % echo.port])
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    for s in socks:
        s.settimeout(2)
    wrong = 0
    for i in range(20):
        for k, s in enumerate(socks):  # both in flight at once
            s.sendto(b"client%d-%d" % (k, i), ("127.0.0.1", port))
        for k, s in enumerate(socks):
            wrong += s.recv(100) != b"client%d-%d" % (k, i)
    stop(p)
    check("udp: two clients at once each get only their own replies",
          wrong == 0, "%d of 40 wrong" % wrong)


def test_udp_jitter(echo, rng):
    p, (port,) = relay(["-d", "10", "-j", "5", "-u",
                        "127.0.0.1:0=127.0.0.1:%d" % echo.port])
    rtts, bad, _, _ = udp_pings(port, 80, rng)
    stop(p)
    sd = statistics.stdev(rtts)
    # the sum of two U[5, 15] ms: in [10, 30], SD 4.08 ms, median 20
    p90 = sorted(rtts)[int(0.9 * len(rtts))]
    check("udp -d 10 -j 5: no RTT under 10 ms, 90th percentile <= 30+%g ms"
          % TOL_MS, min(rtts) >= 10 and p90 <= 30 + TOL_MS,
          "%s, p90 %.2f" % (fmt(rtts), p90))
    check("udp -d 10 -j 5: RTT SD in [2.5, 6] ms (4.08 expected)",
          2.5 <= sd <= 6, "SD %.2f ms" % sd)
    check("udp -d 10 -j 5: median RTT within [17, 23+%g] ms" % TOL_MS,
          17 <= statistics.median(rtts) <= 23 + TOL_MS, fmt(rtts))
    check("udp with jitter: replies unchanged", bad == 0, "%d differ" % bad)


def test_tcp_delay(echo, rng):
    base, _ = tcp_pings(echo.port, 30, rng)
    p, (port,) = relay(["-d", "10", "-t", "127.0.0.1:0=127.0.0.1:%d" % echo.port])
    rtts, bad = tcp_pings(port, 40, rng)
    stop(p)
    check_added("tcp", 10, rtts, base)
    check("tcp: every echo equals its request", bad == 0, "%d differ" % bad)


def test_tcp_stream(echo, rng):
    """4 MiB in random-sized writes with jitter: order and bytes kept."""
    p, (port,) = relay(["-d", "5", "-j", "4", "-t",
                        "127.0.0.1:0=127.0.0.1:%d" % echo.port])
    data = rng.randbytes(4 << 20)
    c = socket.create_connection(("127.0.0.1", port))
    got = []

    def reader():
        while True:
            d = c.recv(1 << 16)
            if not d:
                break
            got.append(d)
    t = threading.Thread(target=reader)
    t.start()
    off, ndone = 0, len(echo.digests)
    while off < len(data):
        n = rng.randint(1, 40000)
        c.sendall(data[off:off + n])
        off += n
    c.shutdown(socket.SHUT_WR)
    t.join(60)
    c.close()
    stats = stop(p)
    back = b"".join(got)
    want = hashlib.sha256(data).hexdigest()
    check("tcp -d 5 -j 4: 4 MiB came back identical, in order, then EOF",
          back == data, "%d bytes back of %d" % (len(back), len(data)))
    srv = echo.digests[ndone:]
    check("tcp: the echo server received exactly the bytes sent (sha256)",
          srv == [(len(data), want)], "server saw %s" % srv)
    check("tcp: relay counted one connection", "tcp connections 1" in stats,
          stats)


def main():
    rng = random.Random(11)
    ue, te = UdpEcho(), TcpEcho()
    ue.start()
    te.start()
    test_udp_delay(ue, rng)
    test_udp_flows(ue, rng)
    test_udp_jitter(ue, rng)
    test_tcp_delay(te, rng)
    test_tcp_stream(te, rng)
    sys.exit(0 if all(results) else 1)


main()
