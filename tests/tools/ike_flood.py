#!/usr/bin/env python3
"""IKE_SA_INIT flood against the N3IWF (tests/integ/test_ike_flood.sh).

Each request is a fresh IKE_SA_INIT of the qkd mode (fresh SPIi and nonce,
SA with KE transform 1025, QKD_REQUEST naming an SAE), sent from several
UDP sockets bound to the given source addresses. With --cookies the tool
answers every COOKIE (RFC 7296 2.6: the same request with the COOKIE notify
first), as an attacker that sees its own traffic would; without, it stays
silent. It prints one line of counts:

  sent=N cookies=N answered=N key_ids=N temporary_failure=N qkd_unavailable=N other=N
"""
import argparse
import os
import select
import socket
import struct
import sys
import time

PL_SA, PL_NONCE, PL_NOTIFY = 33, 40, 41
N_COOKIE, N_QKD_REQUEST, N_QKD_KEY_IDS = 16390, 51001, 51000
N_TEMPORARY_FAILURE, N_QKD_UNAVAILABLE = 43, 51002


def transform(last, ttype, tid, attr=b""):
    return struct.pack("!BBHBBH", 0 if last else 3, 0, 8 + len(attr), ttype, 0,
                       tid) + attr


def sa_payload():
    xf = (transform(False, 1, 12, struct.pack("!HH", 0x800E, 256)) +  # AES-CBC-256
          transform(False, 2, 5) +      # PRF_HMAC_SHA2_256
          transform(False, 3, 12) +     # AUTH_HMAC_SHA2_256_128
          transform(True, 4, 1025))     # KE: QKD_ETSI014
    return struct.pack("!BBHBBBB", 0, 0, 8 + len(xf), 1, 1, 0, 4) + xf


def notify_body(ntype, data):
    return struct.pack("!BBH", 0, 0, ntype) + data


def message(spi, nonce, sae, cookie):
    """Payload chain: [COOKIE], SA, Nonce, QKD_REQUEST."""
    bodies = []
    if cookie is not None:
        bodies.append((PL_NOTIFY, notify_body(N_COOKIE, cookie)))
    bodies += [(PL_SA, sa_payload()), (PL_NONCE, nonce),
               (PL_NOTIFY, notify_body(N_QKD_REQUEST, sae.encode()))]
    chain = b""
    for i, (_, body) in enumerate(bodies):
        nxt = bodies[i + 1][0] if i + 1 < len(bodies) else 0
        chain += struct.pack("!BBH", nxt, 0, 4 + len(body)) + body
    hdr = spi + bytes(8) + struct.pack("!BBBBII", bodies[0][0], 0x20, 34, 0x08,
                                       0, 28 + len(chain))
    return hdr + chain


def notifies(msg):
    """[(type, data)] of a response, [] if it does not parse."""
    if len(msg) < 28:
        return []
    nxt, off, out = msg[16], 28, []
    while nxt != 0 and off + 4 <= len(msg):
        plen = struct.unpack("!H", msg[off + 2:off + 4])[0]
        if plen < 4 or off + plen > len(msg):
            return out
        if nxt == PL_NOTIFY and plen >= 8:
            out.append((struct.unpack("!H", msg[off + 6:off + 8])[0],
                        msg[off + 8 + msg[off + 5]:off + plen]))
        nxt, off = msg[off], off + plen
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True, help="IPV4:PORT of the N3IWF")
    ap.add_argument("--sources", required=True,
                    help="comma-separated source addresses, one socket each")
    ap.add_argument("--count", type=int, default=1000, help="requests in all")
    ap.add_argument("--cookies", action="store_true", help="answer COOKIEs")
    ap.add_argument("--sae", default="sae-b",
                    help="SAE ID to claim; 'random' for a fresh one each time")
    ap.add_argument("--drain", type=float, default=2.0,
                    help="seconds to wait for answers at the end")
    ap.add_argument("--window", type=int, default=32,
                    help="datagrams sent and not yet answered, at most; a "
                    "stalled window opens after 0.5 s (lost datagrams)")
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    dst = (host, int(port))
    socks = []
    for src in a.sources.split(","):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind((src, 0))
        s.setblocking(False)
        socks.append(s)
    pending = {}        # SPIi -> (nonce, sae), until answered
    cnt = dict(sent=0, cookies=0, answered=0, key_ids=0, temporary_failure=0,
               qkd_unavailable=0, other=0)
    io = dict(out=0, back=0)    # datagrams sent / received

    def receive(timeout):
        r, _, _ = select.select(socks, [], [], timeout)
        for s in r:
            while True:
                try:
                    msg = s.recv(65535)
                except BlockingIOError:
                    break
                io["back"] += 1
                spi, ns = msg[:8], notifies(msg)
                types = [t for t, _ in ns]
                if N_COOKIE in types and a.cookies and spi in pending:
                    nonce, sae = pending[spi]
                    cookie = ns[types.index(N_COOKIE)][1]
                    s.send(message(spi, nonce, sae, cookie))
                    io["out"] += 1
                    cnt["answered"] += 1
                    cnt["cookies"] += 1
                    continue
                pending.pop(spi, None)
                if N_COOKIE in types:
                    cnt["cookies"] += 1
                elif N_QKD_KEY_IDS in types:
                    cnt["key_ids"] += 1
                elif N_TEMPORARY_FAILURE in types:
                    cnt["temporary_failure"] += 1
                elif N_QKD_UNAVAILABLE in types:
                    cnt["qkd_unavailable"] += 1
                else:
                    cnt["other"] += 1

    for s in socks:
        s.connect(dst)
    for i in range(a.count):
        s = socks[i % len(socks)]
        stall = time.monotonic() + 0.5
        while io["out"] - io["back"] >= a.window and time.monotonic() < stall:
            before = io["back"]
            receive(0.05)
            if io["back"] > before:
                stall = time.monotonic() + 0.5
        if io["out"] - io["back"] >= a.window:
            io["back"] = io["out"] - a.window // 2     # count them lost
        spi, nonce = os.urandom(8), os.urandom(32)
        sae = "sae-r" + os.urandom(6).hex() if a.sae == "random" else a.sae
        if a.cookies:
            pending[spi] = (nonce, sae)
        try:
            s.send(message(spi, nonce, sae, None))
            cnt["sent"] += 1
            io["out"] += 1
        except (BlockingIOError, ConnectionRefusedError):
            pass
        if i % len(socks) == len(socks) - 1:
            receive(0.002)
    end = time.monotonic() + a.drain
    while time.monotonic() < end:
        receive(0.05)
    print(" ".join("%s=%d" % kv for kv in cnt.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
