#!/bin/sh
# NAS over TCP (TS 24.502 9.4) between the UE and N3IWF modules on
# loopback, seen from outside: the loopback test program
# ($BUILD/tests/test_ike_nas_tcp: nas_ue.c and nas_n3iwf.c over real TCP
# on 127.0.0.1, registration complete, PDU session, bad peers) runs while
# dumpcap captures its N3IWF port on lo; the TCP payloads are cut into
# envelopes here (python3, 2-octet length + NAS message) and every NAS
# message is decoded by tshark's NAS-5GS dissector (null ciphering
# decoded: this run's AMF selects 5G-EA0, NAS_TCP_TEST_CIPHERING=ea0). Checked: the envelopes tile each stream of
# the good UEs exactly; the NAS messages in order (Registration Accept,
# Registration Complete, UL NAS TRANSPORT with PDU Session Establishment
# Request for PSI 5 and DNN "internet", DL NAS TRANSPORT with the Accept:
# QFI 9, PDU address 127.0.0.2); the second UE gets a Reject; no malformed
# message. Then the run again with 128-NEA2 (the AMF's default): the
# session comes up, and the plain NAS TRANSPORT bodies (5GSM request and
# accept, DNN) of the first run never appear in its capture.
#   KEEP=1  keep the temp dir
. "$(dirname "$0")/lib.sh"
BUILD=${BUILD:-build}
T=$top/$BUILD/tests/test_ike_nas_tcp
[ -x "$T" ] || { nok "nas-tcp: $T not built"; exit 1; }
for b in tshark dumpcap text2pcap python3; do
	command -v "$b" >/dev/null 2>&1 || {
		nok "nas-tcp: $b not installed (Debian: apt-get install tshark python3)"; exit 1; }
done
# a free TCP port below the ephemeral range, so no other test's client
# socket lands on it mid-capture
P=
b=$((20000 + ($$ % 5990) * 2))
for i in 1 2 3 4 5 6 7 8 9 10; do
	if [ -z "$(ss -Hltn "( sport = :$b )" 2>/dev/null)" ]; then P=$b; break; fi
	b=$((b + 2))
done
[ -n "$P" ] || { nok "nas-tcp: no free TCP port"; exit 1; }

# capture NAME CIPHERING: the test program's run (AMF NAS ciphering ea0
# or ea2) captured into $TB/NAME.pcap; its TCP segments with data as
# "stream|srcport|payload hex" in $TB/NAME.segs
capture() {
	dumpcap -q -P -i lo -f "tcp port $P" -w "$TB/$1.pcap" 2>"$TB/dumpcap.log" &
	DC=$!
	i=0
	while [ ! -s "$TB/$1.pcap" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	sleep 0.3
	NAS_TCP_TEST_PORT=$P NAS_TCP_TEST_CIPHERING=$2 "$T" >"$TB/$1.log" 2>&1
	check "nas-tcp: loopback test program passes ($2: registration, PDU session up)" 0 "$?"
	sleep 0.3
	kill -INT "$DC"; wait "$DC"
	tshark -r "$TB/$1.pcap" -Y 'tcp.len > 0' -T fields -E separator='|' \
		-e tcp.stream -e tcp.srcport -e tcp.payload >"$TB/$1.segs" 2>/dev/null
}
# 5G-EA0, explicitly: tshark decodes every NAS message
capture nas ea0
cp "$TB/nas.segs" "$TB/segs.txt"
# envelopes -> one text2pcap packet per NAS message; one line per message
# "stream dir" in msgs.idx; "bad" lines for streams whose envelopes do not
# tile exactly (the bad peers' streams: expected)
python3 - "$P" "$TB/segs.txt" "$TB/msgs.txt" "$TB/msgs.idx" <<'PY'
import sys
port, segs, out, idx = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
streams = {}
for line in open(segs):
    s, sp, pl = line.strip().split('|')
    d = 'ul' if sp != port else 'dl'
    streams.setdefault((int(s), d), bytearray()).extend(bytes.fromhex(pl.replace(':', '')))
with open(out, 'w') as o, open(idx, 'w') as x:
    for (s, d), b in sorted(streams.items()):
        i = 0
        while i + 2 <= len(b):
            n = b[i] << 8 | b[i + 1]
            if n == 0 or i + 2 + n > len(b):
                break
            m = b[i + 2:i + 2 + n]
            if n > 4096:  # NAS_TCP_MAX: the oversized peer's
                x.write('%d %s over\n' % (s, d))
                i += 2 + n
                continue
            o.write('000000 ' + ' '.join('%02x' % c for c in m) + '\n')
            x.write('%d %s\n' % (s, d))
            i += 2 + n
        if i != len(b):
            x.write('%d %s bad\n' % (s, d))
PY
text2pcap -q -P nas-5gs "$TB/msgs.txt" "$TB/msgs.pcap" 2>/dev/null
tshark -r "$TB/msgs.pcap" -o nas-5gs.null_decipher:TRUE -T fields -E separator='|' \
	-e nas_5gs.mm.message_type -e nas_5gs.sm.message_type \
	-e nas_5gs.pdu_session_id -e nas_5gs.cmn.dnn -e nas_5gs.sm.qfi \
	-e nas_5gs.sm.pdu_addr_inf_ipv4 -e _ws.malformed -e _ws.expert.severity \
	>"$TB/dec.txt" 2>/dev/null
grep -Ev 'bad|over' "$TB/msgs.idx" | paste -d'|' - "$TB/dec.txt" >"$TB/all.txt"
# the first two streams are the two good UEs
s1=$(awk 'NR == 1 {print $1}' "$TB/msgs.idx")
flow() { awk -v s="$1" '$1 == s' "$TB/all.txt" | cut -d'|' -f2- | cut -d'|' -f1-6; }
# (message types in tshark's numbers: 0x42 Registration Accept, 0x43
# Complete, 0x67 UL / 0x68 DL NAS transport, 0xc1/0xc2/0xc3 5GSM request,
# accept, reject; the transport's PDU session ID, then the 5GSM header's)
want1='0x42|||||
0x43|||||
0x67|0xc1|5,5|internet||
0x68|0xc2|5,5||9|127.0.0.2'
got1=$(flow "$s1" | sort -t'|' -k1,1)
check "nas-tcp: UE 1 flow decoded by tshark" "$want1" "$got1"
got2=$(flow "$((s1 + 1))" | sort -t'|' -k1,1 | cut -d'|' -f1-2)
check "nas-tcp: UE 2 (Child SA failed) gets the Reject" "0x42|
0x43|
0x67|0xc1
0x68|0xc3" "$got2"
check "nas-tcp: the good streams tile into envelopes" 0 \
	"$(grep -Ec "^($s1|$((s1 + 1))) .* bad" "$TB/msgs.idx")"
check "nas-tcp: no malformed NAS message from the good UEs" 0 \
	"$(awk -v a="$s1" -v b="$((s1 + 1))" '$1 == a || $1 == b' "$TB/all.txt" |
		cut -d'|' -f8 | grep -c .)"
# positive control: the bad peer's garbage envelope is flagged malformed
check "nas-tcp: the garbage envelope is malformed to tshark" 1 \
	"$(awk -v a="$s1" -v b="$((s1 + 1))" '$1 != a && $1 != b' "$TB/all.txt" |
		cut -d'|' -f8 | grep -c .)"
check "nas-tcp: bad peers' streams seen (zero length, truncated)" 2 \
	"$(grep -c ' ul bad$' "$TB/msgs.idx")"
check "nas-tcp: the oversized envelope seen" 1 "$(grep -c ' ul over$' "$TB/msgs.idx")"

# 128-NEA2 (the AMF's default): the same flow with the NAS messages of
# SHT 2/4 ciphered. The plain 5GMM bodies of the ea0 run's UL/DL NAS
# TRANSPORTs (the 5GSM PDU Session Establishment Request and Accept inside,
# deterministic: PSI 5, DNN "internet", QFI 9, address 127.0.0.2) appear
# in the ea0 capture and nowhere in the ea2 one, nor does the DNN's wire
# form; the session still comes up (the test program asserts it).
capture nas2 ea2
sm=$(python3 - "$TB/msgs.txt" <<'PY'
import sys
for line in open(sys.argv[1]):
    m = bytes.fromhex(''.join(line.split()[1:]))
    if len(m) > 9 and m[1] & 0x0f in (2, 4) and m[9] in (0x67, 0x68):
        print(m[7:].hex())
PY
)
check "nas-tcp: ea0: the two NAS TRANSPORT bodies per good UE found" 4 "$(printf '%s\n' "$sm" | grep -c .)"
hexof() { cut -d'|' -f3 "$1" | tr -d ':\n'; }
hexof "$TB/nas.segs" >"$TB/ea0.hex"; hexof "$TB/nas2.segs" >"$TB/ea2.hex"
n0=0; n2=0
for h in $sm; do
	grep -q "$h" "$TB/ea0.hex" && n0=$((n0 + 1))
	grep -q "$h" "$TB/ea2.hex" && n2=$((n2 + 1))
done
check "nas-tcp: ea0: the plain 5GSM-carrying bodies are on the wire" 4 "$n0"
check "nas-tcp: ea2: none of them is on the wire" 0 "$n2"
dnn=08696e7465726e6574	# DNN "internet" (TS 23.003 9.1)
check "nas-tcp: ea0: DNN \"internet\" on the wire" 1 "$(grep -c "$dnn" "$TB/ea0.hex")"
check "nas-tcp: ea2: DNN \"internet\" not on the wire" 0 "$(grep -c "$dnn" "$TB/ea2.hex")"
check "nas-tcp: ea2: NAS bytes went over TCP (both directions)" 2 \
	"$(cut -d'|' -f2 "$TB/nas2.segs" | sed "s/^$P\$/dl/; s/^[0-9]*\$/ul/" | sort -u | grep -c .)"
