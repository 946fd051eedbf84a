#!/bin/sh
# The tunnel end to end (issue 10): tests/testbed.sh up DIR --tunnel --mode M
# (ike-n3iwf and ike-ue in their network namespaces, the ESP data plane on
# TUN devices, NAS over TCP inside the signalling Child SA, the user plane
# in GRE with its QFI inside the user-plane Child SA), in every mode: psk,
# cert, qkd with both key schedules (paper, prf), qkd+dh. For each:
# - ping UE -> DN_ADDR, 0 lost;
# - 4 MB of TCP from the UE namespace to the DN's tcpsink, SHA-256 compared
#   at both ends (the client's line, the sink's line);
# - a capture on NWU_IFACE (dumpcap in NWU_NETNS): tshark sees nothing but
#   ARP, IKE and ESP in UDP 500/4500, and the transfer's plaintext marker
#   never appears in it;
# - an ESP datagram from the capture sent again to the N3IWF is dropped as
#   a replay, and one with a byte changed fails its ICV: both counted in the
#   N3IWF's status file (engine and SA counters);
# - both status files list the signalling SA and the user-plane SA (GRE,
#   QFI 1), each with ESN negotiated (esn=1), with the ping's packets
#   counted on both ends;
# - the keys each connection took, counted at the key servers (kmsd
#   /metrics): 13 (paper), 1 (prf), 1 (qkd+dh: the PPK), 0 (psk, cert).
# The rfc7296 profile: one Child SA with plain IP (no NAS, no GRE): ping,
# TCP with SHA-256, both status files. Then rekeying under traffic: qkd with short lifetimes, ping every 10 ms
# for 26 s through the tunnel, 0 lost, across >= 10 Child SA and >= 2 IKE
# SA rekeys, each Child SA rekey with ESN; kmsd A and B each served 13 + 1
# per rekey, and the rekey key IDs the UE logged are all distinct.
# Needs root, ip, socat, dumpcap, tshark, python3, curl.
. "$(dirname "$0")/lib.sh"
tunnel_test_init tunnel ip socat dumpcap tshark python3 curl "$top/${BUILD:-build}/tools/tcpsink"

MARK=QKD-IPSEC-PLAINTEXT-MARKER
metric() { curl -s --max-time 10 "$1/metrics" | awk -v m="$2" '$1 == m { print $2; f = 1 } END { if (!f) print "?" }'; }
served() { metric "$1" "kmsd_keys_served_total{endpoint=\"$2\"}"; }
keys() { echo "A $(served "$KMSD_A_OPS" enc_keys)/$(served "$KMSD_A_OPS" dec_keys) B $(served "$KMSD_B_OPS" enc_keys)/$(served "$KMSD_B_OPS" dec_keys)"; }
# stat FILE NAME: an engine counter; child FILE KIND NAME: an SA's.
stat() { sed -n "s/^dp $2 //p" "$1"; }
child() { sed -n "s/^child .*kind=$2 .*[ ]$3=\([0-9]*\).*/\1/p" "$1"; }
settle() { sleep 1.3; }	# the status files are rewritten every second
loss() { sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p'; }
inue() { ip netns exec "$UE_NETNS" "$@"; }
send_hex() {	# HEX: one UDP datagram from the UE namespace to the N3IWF:4500
	inue python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(bytes.fromhex(sys.argv[1]), (sys.argv[2], 4500))' "$1" "$N3IWF_NWU_ADDR"
}

# ping_tcp TITLE: 20 pings UE -> DN, 0 lost; 4 MB of TCP to the DN's sink,
# the same bytes and SHA-256 at both ends; then the status files settle.
ping_tcp() {
	check "$1: ping UE -> DN_ADDR, loss" 0 "$(inue ping -c 20 -i 0.05 -W 2 "$DN_ADDR" 2>&1 | loss)"
	exp=$(inue "$TCPSINK" -c "$DN_ADDR:$DN_TCP_PORT" -b 4000000 -m "$MARK")
	i=0; while [ ! -s "$DN_SINK_OUT" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	check_match "$1: TCP client sent 4 MB" '^bytes=4000000 sha256=[0-9a-f]{64}$' "$exp"
	check "$1: the DN's sink got the same bytes and SHA-256" "$exp" "$(cat "$DN_SINK_OUT")"
	settle
}

tunnel_case() {	# TITLE MODE EXPECTED_KEYS [IKE_ARGS]
	t=$1
	rm -rf "$TBT"; mkdir -p "$TBT"
	if ! IKE_ARGS=${4:-} sh "$TB_SH" up "$TBT" --tunnel --mode "$2" >"$TBT/up.log" 2>&1; then
		nok "$t: testbed up --tunnel: $(tail -n 3 "$TBT/up.log")"
		sh "$TB_SH" down "$TBT" >/dev/null 2>&1
		return
	fi
	. "$TBT/testbed.env"
	ok "$t: tunnel up ($(grep -o 'tunnel up: .*' "$UE_LOG"))"
	nwu_capture
	ping_tcp "$t"
	kill -INT "$dc" 2>/dev/null; wait "$dc"
	ts="tshark -r $TBT/nwu.pcap -d udp.port==4500,udpencap"
	wire_checks "$t" "$TBT/nwu.pcap" "$NWU_IFACE"
	# replay and tamper, counted at the receiving end (the N3IWF)
	pkt=$($ts -Y "ip.dst == $N3IWF_NWU_ADDR && esp" -T fields -e udp.payload 2>/dev/null |
	    tr -d ':' | tail -n 1)
	check_match "$t: an ESP datagram UE -> N3IWF from the capture" '^[0-9a-f]{80,}$' "$pkt"
	S=$N3IWF_STATUS
	r0=$(stat "$S" in_replay); c0=$(stat "$S" in_icv)
	send_hex "$pkt"
	bad=$(printf '%s' "$pkt" | python3 -c 'import sys
b = bytearray(bytes.fromhex(sys.stdin.read().strip()))
b[4] ^= 1; b[-1] ^= 0x55
print(b.hex())')
	send_hex "$bad"
	settle
	check "$t: replayed datagram dropped and counted (N3IWF engine)" $((r0 + 1)) "$(stat "$S" in_replay)"
	check "$t: replayed datagram counted on its SA" 1 \
	    "$(child "$S" '[a-z]*' in_replay | awk '{ s += $1 } END { print s }')"
	check "$t: tampered datagram counted as ICV failure (engine)" $((c0 + 1)) "$(stat "$S" in_icv)"
	check "$t: tampered datagram counted on its SA" 1 \
	    "$(child "$S" '[a-z]*' in_icv | awk '{ s += $1 } END { print s }')"
	# the SAs and their counters in both status files
	for f in "$UE_STATUS" "$N3IWF_STATUS"; do
		w=$(basename "$f" .status)
		check_match "$t: $w status: signalling SA" 'kind=signalling gre=0' "$(grep '^child' "$f")"
		check_match "$t: $w status: user-plane SA with GRE, QFI 1" 'kind=user gre=1 qfi=1' "$(grep '^child' "$f")"
		# both ends offer ESN first and take it (RFC 4303 A2, 64-bit)
		check "$t: $w status: both Child SAs negotiated ESN (esn=1)" 2 "$(grep '^child' "$f" | grep -c ' esn=1 ')"
		# N3IWF: the 4 MB in (>= 2,857 packets of 1,400); UE: the
		# 20 echo replies and the ACKs
		min=20; [ "$w" = n3iwf ] && min=2857
		n=$(child "$f" user in_packets)
		[ "${n:-0}" -ge $min ] && ok "$t: $w user-plane SA in_packets $n" ||
		    nok "$t: $w user-plane SA in_packets [$n] < $min"
		n=$(child "$f" signalling in_packets)
		[ "${n:-0}" -ge 3 ] && ok "$t: $w signalling SA in_packets $n (NAS/TCP)" ||
		    nok "$t: $w signalling SA in_packets [$n]"
	done
	check "$t: keys at the key servers (enc/dec served)" "$3" "$(keys)"
	sh "$TB_SH" down "$TBT" >/dev/null 2>&1
	check "$t: ike-ue stopped cleanly (Delete sent)" 1 "$(grep -c 'deleting the IKE SA' "$UE_LOG")"
	check "no sanitizer or crash report ($t)" "" "$(crash_reports "$UE_LOG" "$N3IWF_LOG")"
}

[ -n "${REKEY_ONLY:-}" ] || {
tunnel_case psk psk "A 0/0 B 0/0"
tunnel_case cert cert "A 0/0 B 0/0"
tunnel_case "qkd paper" qkd "A 13/0 B 0/13" "--qkd-schedule paper"
tunnel_case "qkd prf" qkd "A 1/0 B 0/1" "--qkd-schedule prf"
# qkd+dh: the UE draws the PPK (enc_keys at kmsd B), the N3IWF fetches it
tunnel_case qkd+dh qkd+dh "A 0/1 B 1/0"

# The rfc7296 profile (one Child SA, plain IP, no NAS): ping, TCP, status.
t="psk rfc7296"
rm -rf "$TBT"; mkdir -p "$TBT"
if IKE_ARGS="--profile rfc7296" sh "$TB_SH" up "$TBT" --tunnel --mode psk >"$TBT/up.log" 2>&1; then
	. "$TBT/testbed.env"
	ping_tcp "$t"
	for f in "$UE_STATUS" "$N3IWF_STATUS"; do
		check "$t: $(basename "$f" .status) status: one Child SA, plain IP" \
		    "kind=user gre=0 qfi=0 inner=$UE_INNER_ADDR" \
		    "$(grep '^child' "$f" | grep -o 'kind=.* inner=[0-9.]*')"
	done
else
	nok "$t: testbed up --tunnel: $(tail -n 3 "$TBT/up.log")"
fi
sh "$TB_SH" down "$TBT" >/dev/null 2>&1
}

# --- rekeying under traffic (qkd, paper schedule) ---
# The UE rekeys the Child SAs every ~2 s, the N3IWF the IKE SA every ~8 s
# (as test_ike_rekey's split case: no collision, so no key drawn in vain).
t="rekey qkd"
rm -rf "$TBT"; mkdir -p "$TBT"
if UE_ARGS="--child-soft 2 --child-hard 4 --ike-soft 60 --log-level debug" \
    N3IWF_ARGS="--child-soft 60 --ike-soft 8 --ike-hard 12 --qkd-budget-src off --qkd-budget-sae off --qkd-budget-all off" \
    sh "$TB_SH" up "$TBT" --tunnel --mode qkd >"$TBT/up.log" 2>&1; then
	. "$TBT/testbed.env"
	check "$t: ping every 10 ms for 26 s, loss" 0 "$(inue ping -c 2600 -i 0.01 -W 2 "$DN_ADDR" 2>&1 | loss)"
	# NAS over TCP survives the IKE SA rekeys (its 5G context moves along)
	check "$t: the UE's NAS/TCP connection still established" 1 \
	    "$(inue ss -Htn state established "dport = :20000" | grep -c .)"
	upid=$(cat "$TBT/ike-ue.pid")
	kill -TERM "$upid"
	i=0; while [ -r "/proc/$upid/stat" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	rm -f "$TBT/ike-ue.pid"
	rk() { sed -n "s/.*rekey counters:.*[ ]$1=\([0-9]*\).*/\1/p" "$2" | tail -n 1; }
	ch=$(rk child "$UE_LOG"); ik=$(rk ike "$UE_LOG"); uk=$(rk qkd_keys "$UE_LOG")
	[ "${ch:-0}" -ge 10 ] && ok "$t: $ch Child SA rekeys" || nok "$t: Child SA rekeys [$ch] < 10"
	[ "${ik:-0}" -ge 2 ] && ok "$t: $ik IKE SA rekeys" || nok "$t: IKE SA rekeys [$ik] < 2"
	check "$t: one fresh QKD key per rekey (UE)" $((ch + ik)) "$uk"
	check "$t: every Child SA rekey negotiated ESN again (UE log)" "$ch" \
	    "$(grep -c 'Child SA rekeyed: .*, ESN, started by' "$UE_LOG")"
	kill -USR1 "$(cat "$TBT/ike-n3iwf.pid")"; sleep 0.5
	nd=$(rk qkd_drawn "$N3IWF_LOG"); nk=$(rk qkd_keys "$N3IWF_LOG")
	check "$t: rekey keys used, N3IWF = UE" "$uk" "$nk"
	check "$t: every key the N3IWF drew was used" "$nk" "$nd"
	check "$t: kmsd A served 13 + 1 per rekey (enc_keys)" $((13 + ch + ik)) "$(served "$KMSD_A_OPS" enc_keys)"
	check "$t: kmsd B served 13 + 1 per rekey (dec_keys)" $((13 + ch + ik)) "$(served "$KMSD_B_OPS" dec_keys)"
	ids=$(sed -n 's/.*rekey: fresh QKD key \([0-9a-f-]*\).*/\1/p' "$UE_LOG")
	check "$t: distinct rekey key IDs (UE log)" "$uk" "$(printf '%s\n' "$ids" | sort -u | grep -c .)"
	check "$t: no data-plane error logged" 0 "$(cat "$UE_LOG" "$N3IWF_LOG" | grep -c 'error: data plane')"
	check "$t: no hard lifetime reached" 0 "$(cat "$UE_LOG" "$N3IWF_LOG" | grep -c 'hard lifetime reached')"
	check "no sanitizer or crash report ($t)" "" "$(crash_reports "$UE_LOG" "$N3IWF_LOG")"
else
	nok "$t: testbed up --tunnel: $(tail -n 3 "$TBT/up.log")"
fi
sh "$TB_SH" down "$TBT" >/dev/null 2>&1
exit 0
