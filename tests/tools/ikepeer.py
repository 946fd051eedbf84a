#!/usr/bin/python3
"""An IKEv2 initiator written from RFC 7296 / 5282 / 7427 and ike/README.md
alone, to check ike-n3iwf against values computed here and not by our C
code: prf/prf+ (hmac, hashlib), SKEYSEED, SK_*, the QKD key mapping, the SK
payload (AES-CBC + HMAC-SHA2-256-128, AES-GCM-16) and PSK AUTH. Uses only
Python's standard library and python3-cryptography (Debian).

  ikepeer.py qkd  PORT KMSD_URL CA CERT KEY [aes-cbc|aes-gcm]
  ikepeer.py qkdprf PORT KMSD_URL CA CERT KEY [aes-cbc|aes-gcm]
                  (qkd mode's prf schedule: one QKD key as the RFC 7296
                   shared secret, AUTH keyed by SK_pi / SK_pr)
  ikepeer.py psk  PORT PSK GROUP [aes-cbc|aes-gcm]
  ikepeer.py qkddh PORT PSK GROUP KMSD_URL CA CERT KEY   (RFC 8784 PPK from kmsd B)
  ikepeer.py kdf  DRIVER                   (C driver vs. this file, 2.13/2.14/2.17)
  ikepeer.py kmsproxy PORTFILE UPSTREAM CA SRVCERT SRVKEY CLICERT CLIKEY [SUITE]
                  (an ETSI 014 proxy in front of kmsd B that keeps the keys it
                   relays in memory and prints the fingerprints they imply)

Prints "ok - ..." / "not ok - ..." lines (tests/integ/lib.sh) and exits 1
if any check failed. Key bytes are never printed; fingerprints are the
first 8 bytes of SHA-256, as the endpoints log them at debug level.
"""
import base64
import hashlib
import hmac
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import http.server
import urllib.request

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.asymmetric import dh, ec, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

FAILED = 0


def ok(cond, what):
    global FAILED
    print(("ok - " if cond else "not ok - ") + what, flush=True)
    if not cond:
        FAILED += 1
    return cond


# ---- RFC 7296 2.13 with PRF_HMAC_SHA2_256, the only PRF ike/ implements ----
def prf(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def prf_plus(key, seed, n):
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = prf(key, t + seed + bytes([i]))
        out += t
        i += 1
    return out[:n]


def fp(*keys):
    return hashlib.sha256(b"".join(keys)).hexdigest()[:16]


# ---- wire format ----
PL_SA, PL_KE, PL_IDI, PL_IDR, PL_AUTH, PL_NONCE, PL_N, PL_D = 33, 34, 35, 36, 39, 40, 41, 42
PL_TSI, PL_TSR, PL_SK = 44, 45, 46
IKE_SA_INIT, IKE_AUTH, INFORMATIONAL = 34, 35, 37
N_COOKIE = 16390
N_QKD_KEY_IDS, N_QKD_REQUEST = 51000, 51001
N_USE_PPK, N_PPK_IDENTITY = 16435, 16436
N_AUTH_FAILED = 24
ENCR_CBC, ENCR_GCM, INTEG_SHA256, KE_QKD, KE_QKD_PRF = 12, 20, 12, 1025, 1026


def hdr(spi_i, spi_r, nxt, exch, flags, mid, length):
    return spi_i + spi_r + struct.pack("!BBBBII", nxt, 0x20, exch, flags, mid, length)


def chain(pls):
    """pls: [(type, body)] -> (first type, bytes) with next-payload bytes set."""
    out = b""
    for i, (_, body) in enumerate(pls):
        nxt = pls[i + 1][0] if i + 1 < len(pls) else 0
        out += struct.pack("!BBH", nxt, 0, 4 + len(body)) + body
    return (pls[0][0] if pls else 0), out


def parse_chain(first, data):
    pls, t, off = [], first, 0
    while t != 0:
        if off + 4 > len(data):
            raise ValueError("truncated payload chain")
        nxt, _, ln = struct.unpack_from("!BBH", data, off)
        if ln < 4 or off + ln > len(data):
            raise ValueError("bad payload length")
        pls.append((t, data[off + 4:off + ln]))
        if t == PL_SK:
            break
        t, off = nxt, off + ln
    return pls


def xf(ttype, tid, keylen=None, last=False):
    attr = struct.pack("!HH", 0x800E, keylen) if keylen else b""
    return struct.pack("!BBHBBH", 0 if last else 3, 0, 8 + len(attr), ttype, 0, tid) + attr


def sa_payload(proto, spi, xfs):
    body = b"".join(xf(t, i, k, last=(n == len(xfs) - 1)) for n, (t, i, k) in enumerate(xfs))
    return struct.pack("!BBHBBBB", 0, 0, 8 + len(spi) + len(body), 1, proto, len(spi), len(xfs)) + spi + body


def notify(ntype, data=b""):
    return struct.pack("!BBH", 0, 0, ntype) + data


def notifies(pls):
    return {struct.unpack_from("!H", b, 2)[0]: b[4 + b[1]:] for t, b in pls if t == PL_N}


def ts_any():
    return struct.pack("!B3x", 1) + struct.pack("!BBHHH", 7, 0, 16, 0, 65535) + bytes(4) + b"\xff" * 4


class Suite:
    """The negotiated algorithms: AES-CBC-256 + HMAC-SHA2-256-128 or AES-GCM-16-256."""

    def __init__(self, name):
        self.name = name
        self.gcm = name == "aes-gcm"
        self.encr = ENCR_GCM if self.gcm else ENCR_CBC
        self.elen = 36 if self.gcm else 32
        self.alen = 0 if self.gcm else 32

    def ike_xfs(self, ke):
        x = [(1, self.encr, 256), (2, 5, None)]
        if not self.gcm:
            x.append((3, INTEG_SHA256, None))
        return x + [(4, ke, None)]

    def esp_xfs(self):
        x = [(1, self.encr, 256)]
        if not self.gcm:
            x.append((3, INTEG_SHA256, None))
        return x + [(5, 0, None)]

    def seal(self, h0, first, inner, ek, ak):
        """The whole protected message: header | SK hdr | IV | C | ICV."""
        if self.gcm:
            iv = os.urandom(8)
            pt = inner + b"\x00"
            total = 28 + 4 + 8 + len(pt) + 16
            head = h0(total) + struct.pack("!BBH", first, 0, total - 28)
            ct = AESGCM(ek[:32]).encrypt(ek[32:36] + iv, pt, head)
            return head + iv + ct
        iv = os.urandom(16)
        pad = (16 - (len(inner) + 1) % 16) % 16
        pt = inner + bytes(pad) + bytes([pad])
        total = 28 + 4 + 16 + len(pt) + 16
        head = h0(total) + struct.pack("!BBH", first, 0, total - 28)
        enc = Cipher(algorithms.AES(ek), modes.CBC(iv)).encryptor()
        body = head + iv + enc.update(pt) + enc.finalize()
        return body + hmac.new(ak, body, hashlib.sha256).digest()[:16]

    def open(self, msg, ek, ak):
        """(header fields, inner payloads) or raises on a bad ICV/tag."""
        if len(msg) < 28 + 4 or msg[16] != PL_SK:
            raise ValueError("not an SK message")
        first = msg[28]
        head = msg[:32]
        if self.gcm:
            iv, ct = msg[32:40], msg[40:]
            pt = AESGCM(ek[:32]).decrypt(ek[32:36] + iv, ct, head)
        else:
            icv = msg[-16:]
            want = hmac.new(ak, msg[:-16], hashlib.sha256).digest()[:16]
            if not hmac.compare_digest(icv, want):
                raise ValueError("ICV does not verify")
            dec = Cipher(algorithms.AES(ek), modes.CBC(msg[32:48])).decryptor()
            pt = dec.update(msg[48:-16]) + dec.finalize()
        pad = pt[-1]
        return parse_chain(first, pt[:len(pt) - 1 - pad])


# ---- key exchange groups 14, 19, 31 ----
MODP2048_P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74"
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437"
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05"
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB"
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718"
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF", 16)


class KE:
    def __init__(self, group):
        self.group = group
        if group == 14:
            self.priv = dh.DHParameterNumbers(MODP2048_P, 2).parameters().generate_private_key()
            self.pub = self.priv.public_key().public_numbers().y.to_bytes(256, "big")
        elif group == 19:
            self.priv = ec.generate_private_key(ec.SECP256R1())
            n = self.priv.public_key().public_numbers()
            self.pub = n.x.to_bytes(32, "big") + n.y.to_bytes(32, "big")
        elif group == 31:
            self.priv = x25519.X25519PrivateKey.generate()
            self.pub = self.priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        else:
            raise ValueError("group %d" % group)

    def shared(self, peer):
        if self.group == 14:
            y = dh.DHPublicNumbers(int.from_bytes(peer, "big"),
                                   dh.DHParameterNumbers(MODP2048_P, 2)).public_key()
            return self.priv.exchange(y).rjust(256, b"\x00")
        if self.group == 19:
            pk = ec.EllipticCurvePublicNumbers(int.from_bytes(peer[:32], "big"),
                                               int.from_bytes(peer[32:], "big"),
                                               ec.SECP256R1()).public_key()
            return self.priv.exchange(ec.ECDH(), pk)
        return self.priv.exchange(x25519.X25519PublicKey.from_public_bytes(peer))


# ---- ETSI GS QKD 014 client (stdlib only) ----
def etsi_post(url, body, ca, cert, key):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    rq = urllib.request.Request(url, data=json.dumps(body).encode(),
                                headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(rq, context=ctx, timeout=10) as r:
        return json.loads(r.read())


def uuid_str(b):
    h = b.hex()
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


# ---- one IKE SA as initiator ----
class Initiator:
    def __init__(self, port, suite, timeout=3.0):
        self.addr = ("127.0.0.1", port)
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.settimeout(timeout)
        self.suite = suite
        self.spi_i = os.urandom(8)
        self.spi_r = bytes(8)
        self.ni = os.urandom(32)

    def xchg(self, msg):
        self.s.sendto(msg, self.addr)
        try:
            return self.s.recvfrom(65535)[0]
        except socket.timeout:
            return None

    def init(self, ke_id, extra):
        """IKE_SA_INIT; extra: payloads after Nonce. Returns the response payloads."""
        pls = [(PL_SA, sa_payload(1, b"", self.suite.ike_xfs(ke_id)))]
        if ke_id not in (KE_QKD, KE_QKD_PRF):
            self.ke = KE(ke_id)
            pls.append((PL_KE, struct.pack("!HH", ke_id, 0) + self.ke.pub))
        pls.append((PL_NONCE, self.ni))
        pls += extra
        cookie = None
        for _ in range(2):
            # RFC 7296 2.6: a COOKIE answer is repeated as the first payload.
            ck = [(PL_N, notify(N_COOKIE, cookie))] if cookie is not None else []
            first, body = chain(ck + pls)
            self.init_req = hdr(self.spi_i, bytes(8), first, IKE_SA_INIT, 0x08, 0,
                                28 + len(body)) + body
            self.init_resp = self.xchg(self.init_req)
            if self.init_resp is None:
                raise RuntimeError("no IKE_SA_INIT response")
            pl = parse_chain(self.init_resp[16], self.init_resp[28:])
            cookie = notifies(pl).get(N_COOKIE)
            if cookie is None or ck:
                break
        self.spi_r = self.init_resp[8:16]
        nonce = [b for t, b in pl if t == PL_NONCE]
        if not nonce:
            raise RuntimeError("IKE_SA_INIT answered without a Nonce (notifies %s)" %
                               sorted(notifies(pl)))
        self.nr = nonce[0]
        return pl

    def set_keys(self, d, ai, ar, ei, er, pi, pr):
        self.sk = dict(d=d, ai=ai, ar=ar, ei=ei, er=er, pi=pi, pr=pr)

    def dh_keys(self, pl):
        """RFC 7296 2.14 from the DH shared secret."""
        kd = next(b for t, b in pl if t == PL_KE)
        self.secret_keys(self.ke.shared(kd[4:]))

    def secret_keys(self, gir):
        """RFC 7296 2.14 from a shared secret (g^ir, or the prf schedule's QKD key)."""
        seed = prf(self.ni + self.nr, gir)
        s, a, e = 32, self.suite.alen, self.suite.elen
        km = prf_plus(seed, self.ni + self.nr + self.spi_i + self.spi_r, 3 * s + 2 * a + 2 * e)
        parts, off = [], 0
        for n in (s, a, a, e, e, s, s):
            parts.append(km[off:off + n])
            off += n
        self.set_keys(*parts)

    def auth(self, secret, idi=b"ue.test", extra=()):
        """IKE_AUTH (rfc7296 profile, PSK AUTH). Returns the raw response or None."""
        self.spi_esp = os.urandom(4)
        idb = struct.pack("!B3x", 2) + idi
        octets = self.init_req + self.nr + prf(self.sk["pi"], idb)
        authd = prf(prf(secret, b"Key Pad for IKEv2"), octets)
        first, inner = chain([(PL_IDI, idb), (PL_AUTH, struct.pack("!B3x", 2) + authd),
                              (PL_SA, sa_payload(3, self.spi_esp, self.suite.esp_xfs())),
                              (PL_TSI, ts_any()), (PL_TSR, ts_any())] + list(extra))
        return self.protected(IKE_AUTH, 1, first, inner)

    def protected(self, exch, mid, first, inner):
        h0 = lambda total: hdr(self.spi_i, self.spi_r, PL_SK, exch, 0x08, mid, total)
        msg = self.suite.seal(h0, first, inner, self.sk["ei"], self.sk["ai"])
        return self.xchg(msg)

    def open(self, msg, swap=False):
        ek, ak = (self.sk["ei"], self.sk["ai"]) if swap else (self.sk["er"], self.sk["ar"])
        return self.suite.open(msg, ek, ak)

    def peer_auth_ok(self, pl, secret):
        idr = next(b for t, b in pl if t == PL_IDR)
        authp = next(b for t, b in pl if t == PL_AUTH)
        octets = self.init_resp + self.ni + prf(self.sk["pr"], idr)
        want = prf(prf(secret, b"Key Pad for IKEv2"), octets)
        return authp[0] == 2 and hmac.compare_digest(authp[4:], want)

    def delete(self):
        first, inner = chain([(PL_D, struct.pack("!BBH", 1, 0, 0))])
        return self.protected(INFORMATIONAL, 2, first, inner)


def qkd_key(k, n):
    """A transform key from a QKD key (ike/README): truncated, GCM salt from prf."""
    return k[:n] if n <= 32 else k + prf(k, b"ike-qkd-salt")[:n - 32]


def qkd_sa_keys(keys, suite):
    """The documented mapping: 0,1 SK_ei/er; 2,3 SK_ai/ar; 12 AUTH, SK_d/pi/pr."""
    e, a = suite.elen, suite.alen
    k12 = keys[12]
    return (prf(k12, b"SK_d"), qkd_key(keys[2], a) if a else b"", qkd_key(keys[3], a) if a else b"",
            qkd_key(keys[0], e), qkd_key(keys[1], e), prf(k12, b"SK_pi"), prf(k12, b"SK_pr"))


def qkd_child_fp(keys, base, suite):
    e, a = suite.elen, suite.alen
    ei, er = qkd_key(keys[base], e), qkd_key(keys[base + 1], e)
    ai = qkd_key(keys[base + 2], a) if a else b""
    ar = qkd_key(keys[base + 3], a) if a else b""
    return fp(ei, ai, er, ar)


def ike_fp(k):
    return fp(k["d"], k["ai"], k["ar"], k["ei"], k["er"], k["pi"], k["pr"])


def qkd_conn(port, kmsd, ca, cert, key, suite, variant):
    """One qkd connection; variant: 'good', 'swap-e' (SK_ei<->SK_er), 'swap-a'
    (SK_ai<->SK_ar), 'swap-auth' (key 11 as AUTH key). Fetches the 13 keys
    itself at kmsd B."""
    ini = Initiator(port, suite, 3.0 if variant == "good" else 2.0)
    pl = ini.init(KE_QKD, [(PL_N, notify(N_QKD_REQUEST, b"sae-b"))])
    ids = notifies(pl).get(N_QKD_KEY_IDS)
    if not ok(ids is not None and len(ids) == 1 + 13 * 16 and ids[0] == 13,
              "qkd/%s/%s: IKE_SA_INIT response carries 13 key IDs" % (suite.name, variant)):
        return None
    uuids = [uuid_str(ids[1 + 16 * i:17 + 16 * i]) for i in range(13)]
    r = etsi_post(kmsd + "/api/v1/keys/sae-a/dec_keys",
                  {"key_IDs": [{"key_ID": u} for u in uuids]}, ca, cert, key)
    got = {k["key_ID"].lower(): base64.b64decode(k["key"]) for k in r["keys"]}
    keys = [got.get(u) for u in uuids]
    if not ok(all(k is not None and len(k) == 32 for k in keys),
              "qkd/%s/%s: the 13 keys of 256 bits fetched at kmsd B" % (suite.name, variant)):
        return None
    sk = list(qkd_sa_keys(keys, suite))
    secret = keys[12]
    if variant == "swap-e":
        sk[3], sk[4] = sk[4], sk[3]
    if variant == "swap-a":
        sk[1], sk[2] = sk[2], sk[1]
    if variant == "swap-auth":
        secret = keys[11]
    ini.set_keys(*sk)
    resp = ini.auth(secret)
    return ini, keys, secret, resp


def cmd_qkd(port, kmsd, ca, cert, key, suite_name="aes-cbc"):
    suite = Suite(suite_name)
    t = "qkd/" + suite_name
    c = qkd_conn(port, kmsd, ca, cert, key, suite, "good")
    if c is None:
        return
    ini, keys, secret, resp = c
    if ok(resp is not None, "%s: N3IWF answers IKE_AUTH protected with keys 0 and 2" % t):
        try:
            pl = ini.open(resp)
            ok(True, "%s: response ICV checks with key 3 (SK_ar), decrypts with key 1 (SK_er)" % t)
        except Exception as e:
            pl = []
            ok(False, "%s: response does not open with SK_ar/SK_er: %s" % (t, e))
        n = notifies(pl)
        ok(N_AUTH_FAILED not in n and any(tp == PL_AUTH for tp, _ in pl),
           "%s: N3IWF accepts our AUTH made with key 12" % t)
        ok(bool(pl) and ini.peer_auth_ok(pl, secret), "%s: N3IWF's AUTH verifies with key 12" % t)
        ok(bool(pl) and not ini.peer_auth_ok(pl, keys[11]), "%s: ... and not with key 11" % t)
        try:
            ini.open(resp, swap=True)
            ok(False, "%s: response also opens with SK_ai/SK_ei (mapping not pinned)" % t)
        except Exception:
            ok(True, "%s: response does not open with SK_ai/SK_ei" % t)
        print("# fp ike %s child1 %s" % (ike_fp(ini.sk), qkd_child_fp(keys, 4, suite)), flush=True)
        # A wrong mapping (directions of Child SA 1 swapped) for the self-check.
        wrong = [keys[i] for i in (0, 1, 2, 3, 5, 4, 7, 6)]
        print("# fpwrong child1 %s" % qkd_child_fp(wrong, 4, suite), flush=True)
        d = ini.delete()
        ok(d is not None and ini.open(d) is not None, "%s: Delete answered" % t)
    # The checks above must be able to fail: a wrong mapping is refused.
    for v, what in (("swap-e", "SK_ei and SK_er"), ("swap-a", "SK_ai and SK_ar")):
        if v == "swap-a" and suite.gcm:
            continue
        c = qkd_conn(port, kmsd, ca, cert, key, suite, v)
        if c is not None:
            ok(c[3] is None, "%s: %s swapped: N3IWF drops the IKE_AUTH" % (t, what))
    c = qkd_conn(port, kmsd, ca, cert, key, suite, "swap-auth")
    if c is not None:
        pl = []
        try:
            pl = c[0].open(c[3]) if c[3] else []
        except Exception:
            pass
        ok(N_AUTH_FAILED in notifies(pl),
           "%s: key 11 as AUTH key: N3IWF answers AUTHENTICATION_FAILED" % t)


def auth_answer(ini, secret, t, under):
    """IKE_AUTH with PSK-style AUTH keyed by secret; the opened response's
    payloads, or None (a failed check) without one."""
    resp = ini.auth(secret)
    if not ok(resp is not None, "%s: N3IWF answers IKE_AUTH under %s" % (t, under)):
        return None
    try:
        return ini.open(resp)
    except Exception as e:
        ok(False, "%s: response does not open with SK_er/SK_ar: %s" % (t, e))
        return None


def cmd_qkdprf(port, kmsd, ca, cert, key, suite_name="aes-cbc"):
    """qkd mode, prf schedule: KE 1026, ONE key ID in QKD_KEY_IDS, the key
    fetched here at kmsd B and used as the shared secret of RFC 7296 2.14;
    AUTH is PSK-style keyed by SK_pi (ours) and SK_pr (the N3IWF's)."""
    suite = Suite(suite_name)
    t = "qkd-prf/" + suite_name
    for variant in ("good", "bad-skeyseed", "raw-k-auth"):
        ini = Initiator(port, suite, 3.0 if variant == "good" else 2.0)
        pl = ini.init(KE_QKD_PRF, [(PL_N, notify(N_QKD_REQUEST, b"sae-b"))])
        ids = notifies(pl).get(N_QKD_KEY_IDS)
        if not ok(ids is not None and len(ids) == 17 and ids[0] == 1 and
                  not any(tp == PL_KE for tp, _ in pl),
                  "%s/%s: IKE_SA_INIT response carries 1 key ID, no KE" % (t, variant)):
            return
        u = uuid_str(ids[1:17])
        r = etsi_post(kmsd + "/api/v1/keys/sae-a/dec_keys", {"key_IDs": [{"key_ID": u}]},
                      ca, cert, key)
        k = base64.b64decode(r["keys"][0]["key"]) if len(r.get("keys", [])) == 1 else b""
        if not ok(len(k) == 32, "%s/%s: the one 256-bit key fetched at kmsd B" % (t, variant)):
            return
        if variant == "bad-skeyseed":
            # Nonces swapped in SKEYSEED: every SK_* differs, the N3IWF drops it.
            ini.ni, ini.nr = ini.nr, ini.ni
            ini.secret_keys(k)
            ini.ni, ini.nr = ini.nr, ini.ni
            ok(ini.auth(ini.sk["pi"]) is None,
               "%s: SKEYSEED with swapped nonces: N3IWF drops the IKE_AUTH" % t)
            continue
        ini.secret_keys(k)
        if variant == "raw-k-auth":
            # The QKD key itself as a PSK (the paper's key-12 style): refused.
            resp = ini.auth(k)
            rpl = ini.open(resp) if resp else []
            ok(N_AUTH_FAILED in notifies(rpl),
               "%s: the raw QKD key as AUTH key: N3IWF answers AUTHENTICATION_FAILED" % t)
            continue
        rpl = auth_answer(ini, ini.sk["pi"], t, "prf+ SK_ei/SK_ai")
        if rpl is None:
            return
        ok(N_AUTH_FAILED not in notifies(rpl) and any(tp == PL_AUTH for tp, _ in rpl),
           "%s: N3IWF accepts our AUTH keyed by SK_pi" % t)
        ok(ini.peer_auth_ok(rpl, ini.sk["pr"]), "%s: N3IWF's AUTH verifies keyed by SK_pr" % t)
        ok(not ini.peer_auth_ok(rpl, ini.sk["pi"]), "%s: ... and not keyed by SK_pi" % t)
        e, a = suite.elen, suite.alen
        km = prf_plus(ini.sk["d"], ini.ni + ini.nr, 2 * (e + a))
        print("# fp ike %s child1 %s" % (ike_fp(ini.sk), fp(km[:e], km[e:e + a], km[e + a:2 * e + a],
                                                              km[2 * e + a:])), flush=True)
        # K used raw as in the paper's table (SK_ei = K ...) for the self-check.
        print("# fpwrong ike %s" % ike_fp(dict(zip(("d", "ai", "ar", "ei", "er", "pi", "pr"),
                                                    qkd_sa_keys([k] * 13, suite)))), flush=True)
        d = ini.delete()
        ok(d is not None and ini.open(d) is not None, "%s: Delete answered" % t)


def cmd_psk(port, psk, group, suite_name="aes-cbc"):
    suite = Suite(suite_name)
    t = "psk/%s/dh%d" % (suite_name, group)
    for variant in ("good", "bad-skeyseed"):
        ini = Initiator(port, suite, 3.0 if variant == "good" else 2.0)
        pl = ini.init(group, [])
        ini.dh_keys(pl)
        if variant == "bad-skeyseed":
            # Nonces swapped in SKEYSEED: every SK_* differs.
            ini.ni, ini.nr = ini.nr, ini.ni
            ini.dh_keys(pl)
            ini.ni, ini.nr = ini.nr, ini.ni
            resp = ini.auth(psk.encode())
            ok(resp is None, "%s: SKEYSEED with swapped nonces: N3IWF drops the IKE_AUTH" % t)
            continue
        rpl = auth_answer(ini, psk.encode(), t, "our SK_ei/SK_ai")
        if rpl is None:
            continue
        ok(N_AUTH_FAILED not in notifies(rpl), "%s: N3IWF accepts our PSK AUTH (SK_pi)" % t)
        ok(ini.peer_auth_ok(rpl, psk.encode()), "%s: N3IWF's AUTH verifies (SK_pr)" % t)
        km = prf_plus(ini.sk["d"], ini.ni + ini.nr, 2 * (suite.elen + suite.alen))
        e, a = suite.elen, suite.alen
        print("# fp ike %s child1 %s" % (ike_fp(ini.sk), fp(km[:e], km[e:e + a], km[e + a:2 * e + a],
                                                              km[2 * e + a:])), flush=True)
        d = ini.delete()
        ok(d is not None, "%s: Delete answered" % t)


def cmd_qkddh(port, psk, group, kmsd, ca, cert, key):
    """qkd+dh (RFC 8784): DH as in psk, then a PPK this initiator draws itself
    with enc_keys {1} at kmsd B (it is the master SAE) and names in
    PPK_IDENTITY; SK_d, SK_pi, SK_pr mixed by RFC 8784 section 3 here."""
    suite = Suite("aes-cbc")
    for variant in ("good", "bad-ppk"):
        t = "qkd+dh/dh%d/%s" % (group, variant)
        ini = Initiator(port, suite)
        pl = ini.init(group, [(PL_N, notify(N_QKD_REQUEST, b"sae-b")), (PL_N, notify(N_USE_PPK))])
        if not ok(N_USE_PPK in notifies(pl), "%s: N3IWF answers USE_PPK" % t):
            continue
        ini.dh_keys(pl)
        r = etsi_post(kmsd + "/api/v1/keys/sae-a/enc_keys", {"number": 1, "size": 256}, ca, cert, key)
        kid, ppk = r["keys"][0]["key_ID"], base64.b64decode(r["keys"][0]["key"])
        if variant == "bad-ppk":
            ppk = bytes([ppk[0] ^ 1]) + ppk[1:]
        sk = ini.sk
        km0 = prf_plus(sk["d"], ini.ni + ini.nr, 128)	# KEYMAT without the PPK
        for nm in ("d", "pi", "pr"):
            sk[nm] = prf_plus(ppk, sk[nm], 32)
        resp = ini.auth(psk.encode(), extra=[(PL_N, notify(N_PPK_IDENTITY, b"\x02" + kid.encode()))])
        try:
            rpl = ini.open(resp) if resp else []
        except Exception as e:
            ok(False, "%s: response does not open with SK_er/SK_ar: %s" % (t, e))
            continue
        n = notifies(rpl)
        if variant == "bad-ppk":
            ok(N_AUTH_FAILED in n, "%s: a PPK with one bit flipped: AUTHENTICATION_FAILED" % t)
            continue
        ok(N_AUTH_FAILED not in n and N_PPK_IDENTITY in n,
           "%s: N3IWF accepts our AUTH under the PPK-mixed SK_pi and confirms PPK_IDENTITY" % t)
        ok(bool(rpl) and ini.peer_auth_ok(rpl, psk.encode()),
           "%s: N3IWF's AUTH verifies under the PPK-mixed SK_pr" % t)
        km = prf_plus(sk["d"], ini.ni + ini.nr, 128)
        print("# fp child1 %s" % fp(km[:32], km[32:64], km[64:96], km[96:]), flush=True)
        print("# fpwrong child1 %s" % fp(km0[:32], km0[32:64], km0[64:96], km0[96:]), flush=True)
        ok(ini.delete() is not None, "%s: Delete answered" % t)


# ---- the C driver (libike) against this file ----
def kdf_case(driver, encr, bits, integ, nl, gl, lie=False):
    """Random inputs -> the driver's values vs. ours; the names that differ.
    lie: compute SKEYSEED from Nr | Ni (a wrong derivation that must differ)."""
    ni, nr, gir = os.urandom(nl), os.urandom(max(16, 256 - nl)), os.urandom(gl)
    spi_i, spi_r, ppk, gir2 = os.urandom(8), os.urandom(8), os.urandom(32), os.urandom(gl)
    args = [driver, str(encr), str(bits), str(integ)] + [
        x.hex() for x in (ni, nr, gir, spi_i, spi_r, ppk, gir2)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=20)
    got = dict(l.split(" ", 1) for l in out.stdout.split("\n") if " " in l)
    elen = bits // 8 + (4 if encr == ENCR_GCM else 0)
    alen = 32 if integ else 0
    seed = prf(nr + ni if lie else ni + nr, gir)
    km = prf_plus(seed, ni + nr + spi_i + spi_r, 96 + 2 * alen + 2 * elen)
    off, want = 0, {"skeyseed": seed}
    for nm, ln in zip(("d", "ai", "ar", "ei", "er", "pi", "pr"), (32, alen, alen, elen, elen, 32, 32)):
        want["sk_" + nm] = km[off:off + ln]
        off += ln
    for pre, s in (("child_", ni + nr), ("childpfs_", gir2 + ni + nr)):
        k = prf_plus(want["sk_d"], s, 2 * (elen + alen))
        want[pre + "ei"], want[pre + "ai"] = k[:elen], k[elen:elen + alen]
        want[pre + "er"], want[pre + "ar"] = k[elen + alen:2 * elen + alen], k[2 * elen + alen:]
    for nm in ("d", "pi", "pr"):	# RFC 8784 section 3
        want["ppk_" + nm] = prf_plus(ppk, want["sk_" + nm], 32)
    want["rekey_skeyseed"] = prf(want["sk_d"], gir2 + ni + nr)	# 2.18
    want["prfplus_8160"] = prf_plus(seed, ni, 255 * 32)
    bad = [k for k, v in want.items() if got.get(k, "?").strip() != v.hex()]
    if out.returncode != 0:
        bad.append("rc %d: %s" % (out.returncode, out.stderr.strip()[-200:]))
    return len(want), len(nr), bad


def cmd_kdf(driver):
    """libike's prf+, SKEYSEED, SK_*, KEYMAT, PPK mix and rekey vs. this file,
    for every transform length our code supports (its only PRF is HMAC-SHA2-256)."""
    for encr, bits, integ in [(ENCR_CBC, 128, 12), (ENCR_CBC, 192, 12), (ENCR_CBC, 256, 12),
                              (ENCR_GCM, 128, 0), (ENCR_GCM, 192, 0), (ENCR_GCM, 256, 0)]:
        for nl, gl in [(16, 32), (32, 64), (256, 256), (17, 32), (255, 1)]:
            n, nrl, bad = kdf_case(driver, encr, bits, integ, nl, gl)
            ok(not bad, "kdf encr %d/%d integ %d nonces %d+%d g^ir %d: %d values match%s" % (
                encr, bits, integ, nl, nrl, gl, n, "" if not bad else " (differ: %s)" % ",".join(bad)))
    n, _, bad = kdf_case(driver, ENCR_CBC, 256, 12, 32, 256, lie=True)
    ok(len(bad) == n, "kdf self-check: a wrong SKEYSEED (Nr | Ni) matches none of the %d values "
       "(%d differ)" % (n, len(bad)))
    # prf+ must refuse more than 255 blocks (RFC 7296 2.13).
    out = subprocess.run([driver, "prfplus-limit"], capture_output=True, text=True, timeout=20)
    ok(out.returncode == 0 and out.stdout.strip() == "refused 8161",
       "prf+ refuses 255 * 32 + 1 bytes [%s]" % out.stdout.strip())


# ---- ETSI 014 proxy that learns the keys the UE fetches ----
def cmd_kmsproxy(portfile, upstream, ca, srvcert, srvkey, clicert, clikey, suite_name="aes-cbc"):
    suite = Suite(suite_name)
    cctx = ssl.create_default_context(cafile=ca)
    cctx.load_cert_chain(clicert, clikey)

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def relay(self, body):
            rq = urllib.request.Request(upstream + self.path, data=body, method=self.command,
                                        headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(rq, context=cctx, timeout=10) as r:
                    code, data = r.status, r.read()
            except urllib.error.HTTPError as e:
                code, data = e.code, e.read()
            if code == 200 and self.path.endswith("/dec_keys") and body:
                order = [k["key_ID"].lower() for k in json.loads(body)["key_IDs"]]
                got = {k["key_ID"].lower(): base64.b64decode(k["key"])
                       for k in json.loads(data)["keys"]}
                keys = [got[u] for u in order]
                if len(keys) == 13:
                    sk = dict(zip(("d", "ai", "ar", "ei", "er", "pi", "pr"),
                                  qkd_sa_keys(keys, suite)))
                    print("fp ike %s child1 %s child2 %s" % (
                        ike_fp(sk), qkd_child_fp(keys, 4, suite), qkd_child_fp(keys, 8, suite)),
                        flush=True)
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.relay(None)

        def do_POST(self):
            self.relay(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(srvcert, srvkey)
    sctx.load_verify_locations(ca)
    sctx.verify_mode = ssl.CERT_REQUIRED
    srv.socket = sctx.wrap_socket(srv.socket, server_side=True)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(portfile + ".tmp", portfile)
    srv.serve_forever()


def main():
    try:
        run(sys.argv[1], sys.argv[2:])
    except Exception as e:	# a crash of the checker is a failed check
        ok(False, "ikepeer.py %s: %s: %s" % (sys.argv[1], type(e).__name__, e))
    sys.exit(1 if FAILED else 0)


def run(cmd, args):
    if cmd == "qkd":
        cmd_qkd(int(args[0]), *args[1:])
    elif cmd == "qkdprf":
        cmd_qkdprf(int(args[0]), *args[1:])
    elif cmd == "psk":
        cmd_psk(int(args[0]), args[1], int(args[2]), *args[3:])
    elif cmd == "qkddh":
        cmd_qkddh(int(args[0]), args[1], int(args[2]), *args[3:])
    elif cmd == "kdf":
        cmd_kdf(args[0])
    elif cmd == "kmsproxy":
        cmd_kmsproxy(*args)
    else:
        raise ValueError("unknown command")


if __name__ == "__main__":
    main()
