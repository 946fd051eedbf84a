#!/usr/bin/env python3
"""Connection-exhaustion attacker for the HTTPS servers' tests.

Holds COUNT TCP connections to 127.0.0.1:PORT, spread over the given source
addresses, and reopens each one REOPEN seconds after the server closes it
(as a client backing off; 0 turns this into a connection-rate flood):

  idle  connect and send nothing
  slow  send one byte of a TLS ClientHello per second per socket (slowloris):
        the record never completes, so only an absolute deadline ends it

Runs until SIGTERM/SIGINT or --duration, then prints one line of key=value
counters: opened (connections made), closed_by_server, open_max (most held
at once), errors (connects that failed at once), max_life_ms (longest any
connection stayed open, including those still open at the end).
"""
import argparse
import collections
import errno
import os
import select
import signal
import socket
import sys
import time

# A TLS 1.2 ClientHello record header and the start of its body: a server
# reads it as a handshake in progress and waits for the rest.
HELLO = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03,
               0x03]) + os.urandom(64)


def parse_addrs(spec):
    """'127.0.0.10-17' or '127.0.0.2' or a comma list of either."""
    out = []
    for part in spec.split(","):
        if "-" in part:
            base, hi = part.rsplit("-", 1)
            pre, lo = base.rsplit(".", 1)
            out += ["%s.%d" % (pre, i) for i in range(int(lo), int(hi) + 1)]
        else:
            out.append(part)
    return out


class Flood:
    def __init__(self, port, addrs, count, mode, reopen):
        self.port, self.addrs, self.count, self.mode = port, addrs, count, mode
        self.reopen = reopen
        self.due = collections.deque()   # times at which closed slots reopen
        self.socks = {}          # fd -> [socket, bytes sent, next send, opened]
        self.poll = select.poll()
        self.n = {"opened": 0, "closed_by_server": 0, "open_max": 0,
                  "errors": 0, "max_life_ms": 0}
        self.next_addr = 0

    def open_one(self):
        src = self.addrs[self.next_addr % len(self.addrs)]
        self.next_addr += 1
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setblocking(False)
        try:
            s.bind((src, 0))
            rc = s.connect_ex(("127.0.0.1", self.port))
        except OSError:
            s.close()
            self.n["errors"] += 1
            return False
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            self.n["errors"] += 1
            return False
        now = time.monotonic()
        self.socks[s.fileno()] = [s, 0, now + 1.0, now]
        self.poll.register(s.fileno(), select.POLLIN | select.POLLERR |
                           select.POLLHUP)
        self.n["opened"] += 1
        return True

    def life(self, st):
        ms = int((time.monotonic() - st[3]) * 1000)
        self.n["max_life_ms"] = max(self.n["max_life_ms"], ms)

    def drop(self, fd):
        self.life(self.socks[fd])
        self.due.append(time.monotonic() + self.reopen)
        s = self.socks.pop(fd)[0]
        self.poll.unregister(fd)
        s.close()

    def fill(self, budget):
        """Reopens up to budget connections (a cap per round keeps the
        loop responsive)."""
        now = time.monotonic()
        while len(self.socks) < self.count and budget > 0:
            if len(self.socks) + len(self.due) >= self.count:
                if self.due[0] > now:
                    break
                self.due.popleft()
            if not self.open_one():
                break
            budget -= 1
        self.n["open_max"] = max(self.n["open_max"], len(self.socks))

    def dribble(self, now):
        for fd, st in list(self.socks.items()):
            if now < st[2]:
                continue
            st[2] = now + 1.0
            try:
                st[0].send(HELLO[st[1] % len(HELLO):st[1] % len(HELLO) + 1])
                st[1] += 1
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.ENOTCONN):
                    self.n["closed_by_server"] += 1
                    self.drop(fd)

    def run(self, until):
        while time.monotonic() < until and not STOP:
            self.fill(200)
            for fd, ev in self.poll.poll(50):
                if fd not in self.socks:
                    continue
                try:
                    data = self.socks[fd][0].recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    self.n["closed_by_server"] += 1
                    self.drop(fd)
            if self.mode == "slow":
                self.dribble(time.monotonic())


STOP = False


def on_signal(sig, frame):
    global STOP
    STOP = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--addrs", default="127.0.0.2")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--mode", choices=("idle", "slow"), default="idle")
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--reopen", type=float, default=0.5,
                    help="seconds before a closed connection is reopened")
    ap.add_argument("--ready", help="file written once COUNT were opened")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    f = Flood(a.port, parse_addrs(a.addrs), a.count, a.mode, a.reopen)
    t_end = time.monotonic() + a.duration
    while f.n["opened"] < a.count and time.monotonic() < t_end and not STOP:
        f.run(time.monotonic() + 0.1)
    if a.ready:
        with open(a.ready, "w") as r:
            r.write("opened=%d\n" % f.n["opened"])
    f.run(t_end)
    for st in f.socks.values():
        f.life(st)
    print(" ".join("%s=%d" % kv for kv in sorted(f.n.items())), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
