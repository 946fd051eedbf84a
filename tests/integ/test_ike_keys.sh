#!/bin/sh
# Key derivation and the 13-key mapping, checked against values computed
# independently by tests/tools/ikepeer.py (Python hmac/hashlib and
# python3-cryptography, written from RFC 7296 and ike/README.md), never
# against the endpoints' own derivation:
#  1. libike's prf+, SKEYSEED, SK_*, Child SA KEYMAT (with and without PFS),
#     rekeyed SKEYSEED and RFC 8784 PPK mixing (tests/tools/ike_kdf.c) vs.
#     Python, for every encryption/integrity key length we support.
#  2. qkd, rfc7296: the Python initiator takes the 13 key IDs from the real
#     ike-n3iwf, fetches the 13 keys itself at kmsd B, derives SK_ei/er/ai/ar
#     and the AUTH key by the documented table, and the N3IWF must accept its
#     IKE_AUTH and answer with an ICV, ciphertext and AUTH that verify under
#     those keys. Swapped keys must be refused. Child SA 1 (keys 4-7): the
#     SHA-256 fingerprint the N3IWF logs must equal the one computed here.
#  2b. qkd with --qkd-schedule prf, rfc7296: the initiator offers KE 1026,
#     takes the one key ID, fetches the key at kmsd B, derives SKEYSEED =
#     prf(Ni | Nr, K) and SK_* itself, AUTHs with SK_pi and checks the
#     N3IWF's AUTH with SK_pr; nonces swapped in SKEYSEED and the raw key
#     as AUTH key must be refused; IKE SA and Child SA 1 fingerprints.
#  3. psk, rfc7296, DH groups 14/19/31: the same initiator with its own DH,
#     SKEYSEED and prf+; the N3IWF accepting IKE_AUTH proves 2.14 end to
#     end; its Child SA 1 fingerprint proves the 2.17 KEYMAT.
#     qkd+dh (RFC 8784): the initiator draws the PPK with enc_keys at kmsd B,
#     mixes SK_d/SK_pi/SK_pr itself; AUTH and Child SA 1 must match.
#  4. qkd, nwu, the real ike-ue and ike-n3iwf: the UE's kmsd is an ETSI 014
#     proxy (ikepeer.py kmsproxy) in front of kmsd B that sees the 13 keys
#     the UE fetches; the IKE SA, Child SA 1 (keys 4-7) and Child SA 2 (keys
#     8-11) fingerprints both endpoints log must be the ones it computes.
#     (No ESP data plane exists here, so the Child SA keys are compared by
#     fingerprint, not by decrypting ESP.)
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
PEER=$top/tests/tools/ikepeer.py
case ${BUILD:-} in
"") case $BINDIR in */build-san/bin) KDF=$top/build-san/tools/ike-kdf ;;
	*) KDF=$top/build/tools/ike-kdf ;; esac ;;
/*) KDF=$BUILD/tools/ike-kdf ;;
*) KDF=$top/$BUILD/tools/ike-kdf ;;
esac
# A missing prerequisite is a failure (python3 + python3-cryptography, mk/deps.sh).
if ! $PY -c 'import hmac, hashlib, ssl; from cryptography.hazmat.primitives.ciphers.aead import AESGCM' 2>"$TB/py.err"; then
	nok "prerequisite: $PY with python3-cryptography: $(tail -n 1 "$TB/py.err")"
	exit 1
fi
[ -x "$KDF" ] || { nok "prerequisite: $KDF not built (make)"; exit 1; }
tb_up

N3_OPTS="--peer-sae sae-b"
. "$(dirname "$0")/ike_lib.sh"
N3PID=""; PXPID=""
trap 'for p in $N3PID $PXPID; do kill "$p" 2>/dev/null; done; tb_cleanup' EXIT INT TERM

n3_stop() {
	kill -TERM "$N3PID" 2>/dev/null
	wait "$N3PID" 2>/dev/null
	N3PID=""
	if grep -aqiE 'sanitizer|runtime error' "$TB/n3.log"; then nok "$1: sanitizer report in the N3IWF log"; fi
}
# has_fp NAME LOG WHAT FP: LOG has the line "WHAT keys sha256-fp=FP".
has_fp() {
	if [ -n "$4" ] && grep -aqF "$3 keys sha256-fp=$4" "$2"; then ok "$1"
	else nok "$1: no \"$3 keys sha256-fp=$4\" in $(basename "$2")"; fi
}
# no_fp NAME FP: FP (a wrong derivation's fingerprint) is not in the N3IWF log.
no_fp() {
	if [ -n "$2" ] && ! grep -aqF "sha256-fp=$2" "$TB/n3.log"; then ok "$1"
	else nok "$1: fingerprint [$2] missing or found in n3.log"; fi
}
# pyfp TAG KEY: the fingerprint after KEY on the "# TAG" line of ikepeer.py.
pyfp() { sed -n "s/^# $1 .*$2 \([0-9a-f]*\).*/\1/p" "$TB/py.out" | head -n 1; }
# py_run TITLE ARGS...: ikepeer.py ARGS, its ok/not ok lines and exit code.
py_run() {
	t=$1; shift
	timeout 120 $PY "$PEER" "$@" >"$TB/py.out" 2>"$TB/py.err"
	check "$t: ikepeer.py exit code" 0 "$?"
	cat "$TB/py.out"
	sed 's/^/# stderr: /' "$TB/py.err" | tail -n 5
}

# ---- 1. the C driver against Python ----
$PY "$PEER" kdf "$KDF"
check "kdf: ikepeer.py exit code" 0 "$?"

# ---- 2. qkd, rfc7296: the Python initiator against the real N3IWF ----
for c in aes-cbc aes-gcm; do
	t="qkd/rfc7296/$c"
	n3_start qkd rfc7296 --cipher "$c"
	[ -n "$N3PORT" ] || { nok "$t: N3IWF did not start: $(tail -n 2 "$TB/n3.log")"; continue; }
	py_run "$t" qkd "$N3PORT" "$KMSD_B_URL" "$CA" "$SAE_B_CERT" "$SAE_B_KEY" "$c"
	has_fp "$t: N3IWF's IKE SA keys are SK_* from keys 0-3 and 12" "$TB/n3.log" "IKE SA" \
		"$(pyfp fp ike)"
	has_fp "$t: N3IWF's Child SA 1 keys are keys 4, 6, 5, 7 (ei, ai, er, ar)" "$TB/n3.log" \
		"Child SA 1 (signalling)" "$(pyfp fp child1)"
	no_fp "$t: self-check: a wrong Child SA mapping's fingerprint is not in the log" \
		"$(pyfp fpwrong child1)"
	n3_stop "$t"
done

# ---- 2b. qkd, prf schedule, rfc7296: one key, RFC 7296 2.14 from it ----
for c in aes-cbc aes-gcm; do
	t="qkd-prf/rfc7296/$c"
	n3_start qkd rfc7296 --cipher "$c" --qkd-schedule prf
	[ -n "$N3PORT" ] || { nok "$t: N3IWF did not start: $(tail -n 2 "$TB/n3.log")"; continue; }
	py_run "$t" qkdprf "$N3PORT" "$KMSD_B_URL" "$CA" "$SAE_B_CERT" "$SAE_B_KEY" "$c"
	has_fp "$t: N3IWF's IKE SA keys = prf+(prf(Ni|Nr, K), Ni|Nr|SPIi|SPIr)" "$TB/n3.log" \
		"IKE SA" "$(pyfp fp ike)"
	has_fp "$t: N3IWF's Child SA 1 keys = prf+(SK_d, Ni|Nr)" "$TB/n3.log" \
		"Child SA 1 (signalling)" "$(pyfp fp child1)"
	no_fp "$t: self-check: K used raw (the paper's table) is not in the log" \
		"$(pyfp fpwrong ike)"
	n3_stop "$t"
done

# ---- 3. psk, rfc7296, DH: SKEYSEED and prf+ end to end ----
for gc in 14/aes-cbc 19/aes-cbc 31/aes-cbc 14/aes-gcm 31/aes-gcm; do
	g=${gc%/*}; c=${gc#*/}
	t="psk/rfc7296/dh$g/$c"
	n3_start psk rfc7296 --dh "$g" --cipher "$c"
	[ -n "$N3PORT" ] || { nok "$t: N3IWF did not start: $(tail -n 2 "$TB/n3.log")"; continue; }
	py_run "$t" psk "$N3PORT" test-psk-1 "$g" "$c"
	has_fp "$t: N3IWF's IKE SA keys = Python's prf+(SKEYSEED, Ni|Nr|SPIi|SPIr)" "$TB/n3.log" \
		"IKE SA" "$(pyfp fp ike)"
	has_fp "$t: N3IWF's Child SA 1 keys = Python's prf+(SK_d, Ni|Nr)" "$TB/n3.log" \
		"Child SA 1 (signalling)" "$(pyfp fp child1)"
	n3_stop "$t"
done

# ---- 3b. qkd+dh, rfc7296: the initiator draws the PPK at kmsd B itself ----
t="qkd+dh/rfc7296/dh31"
n3_start qkd+dh rfc7296 --dh 31
if [ -n "$N3PORT" ]; then
	py_run "$t" qkddh "$N3PORT" test-psk-1 31 "$KMSD_B_URL" "$CA" "$SAE_B_CERT" "$SAE_B_KEY"
	# The N3IWF logs its IKE SA fingerprint before the PPK is known; Child
	# SA 1's KEYMAT comes from the mixed SK_d.
	has_fp "$t: N3IWF's Child SA 1 keys = prf+(prf+(PPK, SK_d), Ni|Nr)" "$TB/n3.log" \
		"Child SA 1 (signalling)" "$(pyfp fp child1)"
	no_fp "$t: self-check: Child SA 1 keys without the PPK are not in the log" \
		"$(pyfp fpwrong child1)"
	n3_stop "$t"
else
	nok "$t: N3IWF did not start: $(tail -n 2 "$TB/n3.log")"
fi

# ---- 4. qkd, nwu: real UE and N3IWF, keys seen by an ETSI 014 proxy ----
for c in aes-cbc aes-gcm; do
	t="qkd/nwu/$c"
	rm -f "$TB/proxy.port"
	$PY "$PEER" kmsproxy "$TB/proxy.port" "$KMSD_B_URL" "$CA" "${CA%/*}/kmsd-b.crt" \
		"${CA%/*}/kmsd-b.key" "$SAE_B_CERT" "$SAE_B_KEY" "$c" >"$TB/proxy.out" 2>"$TB/proxy.err" &
	PXPID=$!
	i=0
	while [ ! -s "$TB/proxy.port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	[ -s "$TB/proxy.port" ] || { nok "$t: kmsproxy did not start: $(tail -n 2 "$TB/proxy.err")"; continue; }
	n3_start qkd nwu --cipher "$c" --max-conns 2
	timeout 60 "$UE" --mode qkd --profile nwu --cipher "$c" --peer "127.0.0.1:$N3PORT" \
		--log-level debug --ca "$CA" --kmsd-url "https://127.0.0.1:$(cat "$TB/proxy.port")" \
		--kmsd-cert "$SAE_B_CERT" --kmsd-key "$SAE_B_KEY" --kmsd-ca "$CA" --peer-sae sae-a \
		--count 2 2>"$TB/ue.log"
	check "$t: ike-ue exit code (2 connections)" 0 "$?"
	n3_stop "$t"
	kill "$PXPID" 2>/dev/null; wait "$PXPID" 2>/dev/null; PXPID=""
	check "$t: the proxy saw 2 dec_keys of 13 keys" 2 "$(grep -c '^fp ike' "$TB/proxy.out")"
	for what in "IKE SA:ike" "Child SA 1 (signalling):child1" "Child SA 2 (user plane):child2"; do
		w=${what%:*}; k=${what#*:}
		exp=$(sed -n "s/^fp .*$k \([0-9a-f]*\).*/\1/p" "$TB/proxy.out")
		for side in ue n3; do
			got=$(grep -a "$w keys sha256-fp=" "$TB/$side.log" | sed 's/.*sha256-fp=//')
			same "$t: $side's $w keys = the mapping applied to the fetched keys" "$exp" "$got"
		done
	done
	if grep -aqiE 'sanitizer|runtime error' "$TB/ue.log"; then nok "$t: sanitizer report in the UE log"; fi
done
exit 0
