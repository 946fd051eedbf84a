#!/usr/bin/env python3
"""IKE_SA_INIT load on ike-n3iwf (psk mode, DH 14): the responder's DH alone.

Keeps WINDOW IKE_SA_INIT requests outstanding (fresh SPIi and nonce each,
SA: AES-CBC-256, HMAC-SHA2-256 PRF and integrity, KE 14; KE data y = 2,
in range 1 < y < p-1, so the N3IWF makes a key pair and g^ir as for any
UE) for SECONDS and counts the answers that carry a KE payload, i.e. the
N3IWF's IKE_SA_INIT responses per second. The tool does no crypto, so it
costs far less CPU than the N3IWF per request (a real ike-ue does the same
DH as the N3IWF). The half-open SAs it leaves expire (--half-open-ms).
Prints: sent=N answered=N other=N seconds=S rate=R/s
"""
import argparse
import os
import select
import socket
import struct
import time

PL_SA, PL_KE, PL_NONCE = 33, 34, 40


def sa_payload():
    def xf(last, ttype, tid, attr=b""):
        return struct.pack("!BBHBBH", 0 if last else 3, 0, 8 + len(attr),
                           ttype, 0, tid) + attr
    x = (xf(False, 1, 12, struct.pack("!HH", 0x800E, 256)) +
         xf(False, 2, 5) + xf(False, 3, 12) + xf(True, 4, 14))
    return struct.pack("!BBHBBBB", 0, 0, 8 + len(x), 1, 1, 0, 4) + x


SA = sa_payload()
KE = struct.pack("!HH", 14, 0) + bytes(255) + b"\x02"


def message(spi, nonce):
    bodies = [(PL_SA, SA), (PL_KE, KE), (PL_NONCE, nonce)]
    chain = b""
    for i, (_, body) in enumerate(bodies):
        nxt = bodies[i + 1][0] if i + 1 < len(bodies) else 0
        chain += struct.pack("!BBH", nxt, 0, 4 + len(body)) + body
    return spi + bytes(8) + struct.pack("!BBBBII", PL_SA, 0x20, 34, 0x08, 0,
                                        28 + len(chain)) + chain


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True, help="IPV4:PORT")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--window", type=int, default=32)
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.connect((host, int(port)))
    s.setblocking(False)
    cnt = dict(sent=0, answered=0, other=0)
    out = 0

    def send():
        s.send(message(os.urandom(8), os.urandom(32)))
        cnt["sent"] += 1

    t0 = time.monotonic()
    end = t0 + a.seconds
    for _ in range(a.window):
        send()
    out = a.window
    while time.monotonic() < end:
        r, _, _ = select.select([s], [], [], 0.2)
        if not r:   # lost (dropped): keep the window full
            for _ in range(a.window - out if out < a.window else a.window):
                send()
            out = a.window
            continue
        while True:
            try:
                msg = s.recv(65535)
            except BlockingIOError:
                break
            out -= 1
            cnt["answered" if len(msg) > 28 and msg[16] == PL_SA
                else "other"] += 1
            send()
            out += 1
    dt = time.monotonic() - t0
    print("sent=%d answered=%d other=%d seconds=%.2f rate=%.1f/s" % (
        cnt["sent"], cnt["answered"], cnt["other"], dt, cnt["answered"] / dt))


if __name__ == "__main__":
    main()
