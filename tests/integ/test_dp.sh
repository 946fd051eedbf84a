#!/bin/sh
# The data-plane engine (ike/dp.h) between two network namespaces, without
# IKE: build/tools/dp-pair runs one side each with static Child SAs (random
# keys in a 0600 file), N3IWF in namespace A, UE in namespace B, one veth
# pair between them (outer 10.98.0.1 <-> 10.98.0.2, ESP in UDP 4500).
# Inner: UE 10.45.0.2 on its TUN; on the N3IWF's TUN NAS_IP 10.45.0.1
# (signalling Child SA, no GRE) and the data-network address 10.45.0.254
# (user-plane Child SA, GRE with QFI 5; rfc7296: one Child SA, plain).
# For each case (nwu/gcm, nwu/cbc, rfc7296/gcm) it checks:
# - ping UE -> DN address and UE -> NAS_IP, 0 loss; each SA's packet
#   counters at BOTH ends (user plane and signalling apart, QFI and GRE
#   in the status);
# - a TCP transfer of 4 MB UE -> DN address, sha256 compared at both ends;
# - the capture on the UE's veth (dumpcap): every IP frame is UDP 4500
#   ESP, and a plaintext marker repeated in the transfer is never in it,
#   while the capture on the N3IWF's TUN (positive control) holds it;
# - an ESP datagram from the capture sent again is dropped as a replay,
#   counted once (engine total and the SA's counter); the same with its
#   sequence number moved ahead and one byte changed fails the ICV,
#   counted once; a datagram with an unknown SPI counts as no_sa;
# - a datagram with the non-ESP marker (IKE) reaches the IKE-side socket
#   (logged and counted by dp-pair), not the engine (nonesp stays 0);
# - both sides exit 0 on SIGTERM with no sanitizer report.
# Needs root, ip, dumpcap/tshark, python3, ping, sha256sum; a missing
# prerequisite is a failure. KEEP=1 keeps the temp dir; CASES= a subset.
. "$(dirname "$0")/lib.sh"
DPP=$top/${BUILD:-build}/tools/dp-pair
CASES=${CASES:-nwu/gcm nwu/cbc rfc7296/gcm}
NSA=dpa$$
NSB=dpb$$
OUT_A=10.98.0.1
OUT_B=10.98.0.2
NAS=10.45.0.1
UE=10.45.0.2
DN=10.45.0.254
MARK=QKDIPSEC-PLAINTEXT-MARKER-7f3a

[ "$(id -u)" -eq 0 ] || { nok "dp: needs root (network namespaces)"; exit 1; }
[ -x "$DPP" ] || { nok "dp: $DPP not built (make)"; exit 1; }
for b in ip dumpcap tshark python3 ping sha256sum openssl; do
	command -v "$b" >/dev/null 2>&1 ||
		{ nok "dp: $b not installed (make deps)"; exit 1; }
done

PIDS=""
dp_cleanup() {
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
	ip netns del "$NSA" 2>/dev/null
	ip netns del "$NSB" 2>/dev/null
	tb_cleanup
}
trap dp_cleanup EXIT
trap 'exit 1' INT TERM
ina() { ip netns exec "$NSA" "$@"; }
inb() { ip netns exec "$NSB" "$@"; }

# The two namespaces and the veth pair; IPv6 off so that the capture
# holds only what the engine and ARP send.
net_up() {
	ip netns add "$NSA" && ip netns add "$NSB" &&
	ip link add va$$ netns "$NSA" type veth peer name vb$$ netns "$NSB" &&
	ina sysctl -qw net.ipv6.conf.all.disable_ipv6=1 &&
	inb sysctl -qw net.ipv6.conf.all.disable_ipv6=1 &&
	ina ip addr add $OUT_A/24 dev va$$ && inb ip addr add $OUT_B/24 dev vb$$ &&
	ina ip link set va$$ up && inb ip link set vb$$ up &&
	ina ip link set lo up && inb ip link set lo up
}

# keys FILE ALG: random keys for both pairs, mode 0600 from the start.
keys() {
	n=36; [ "$2" = cbc ] && n=32
	(umask 077; : >"$1")
	for k in sig.u2n sig.n2u up.u2n up.n2u; do
		echo "$k.enc $(openssl rand -hex $n)"
		[ "$2" = cbc ] && echo "$k.integ $(openssl rand -hex 32)"
	done >>"$1"
}

# start NS ROLE LOCAL PEER TUNADDR PROFILE ALG DIR: one dp-pair, waits for
# its first status file.
start() {
	ip netns exec "$1" "$DPP" --role "$2" --local "$3:4500" --peer "$4:4500" \
		--tun dpt0 --tun-addr "$5" --inner $UE --nas-ip $NAS --qfi 5 \
		--profile "$6" --alg "$7" --esn 1 --keys "$8/keys" \
		--status "$8/$2.status" >"$8/$2.log" 2>&1 &
	PIDS="$PIDS $!"
	eval "PID_$2=$!"
	i=0
	while [ ! -s "$8/$2.status" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	[ -s "$8/$2.status" ]
}

# stat FILE NAME: an engine counter; child FILE KIND FIELD: a Child SA's.
stat() { awk -v n="$2" '$1 == "dp" && $2 == n { print $3 }' "$1"; }
child() {
	sed -n "s/^child .*kind=$2 .*[ ]$3=\([0-9]*\).*/\1/p" "$1"
}
settle() { sleep 0.3; }

# capture NS IFACE FILE: dumpcap in the background until it writes.
capture() {
	ip netns exec "$1" dumpcap -q -P -i "$2" -w "$3" >"$3.log" 2>&1 &
	PIDS="$PIDS $!"
	CAP_PIDS="$CAP_PIDS $!"
	i=0
	while ! grep -q "Capturing on" "$3.log" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.05; i=$((i + 1))
	done
}

# send NS HEX DST: one UDP datagram to DST:4500.
send_hex() {
	ip netns exec "$1" python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(bytes.fromhex(sys.argv[1]), (sys.argv[2], 4500))' "$2" "$3"
}

# tcp_transfer DIR: 4 MB with the marker every 64 kB, UE -> DN:5001.
tcp_transfer() {
	i=0
	while [ $i -lt 64 ]; do
		openssl rand 65536; echo "$MARK"; i=$((i + 1))
	done >"$1/tx.bin"
	ina python3 -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5001)); s.listen(1); s.settimeout(30)
c, _ = s.accept(); c.settimeout(30)
with open(sys.argv[2], "wb") as f:
    while True:
        b = c.recv(65536)
        if not b: break
        f.write(b)' $DN "$1/rx.bin" &
	srv=$!
	i=0	# python may take a while to start on a loaded machine
	while [ -z "$(ina ss -Hltn "sport = :5001")" ] && [ $i -lt 200 ]; do
		sleep 0.05; i=$((i + 1))
	done
	inb python3 -c 'import socket, sys
s = socket.create_connection((sys.argv[1], 5001), timeout=30)
s.sendall(open(sys.argv[2], "rb").read()); s.shutdown(socket.SHUT_WR)
while s.recv(65536): pass' $DN "$1/tx.bin"
	wait $srv
}

# ESP datagram payloads (hex) UE -> N3IWF in a capture.
esp_hex() {
	tshark -r "$1" -d udp.port==4500,udpencap -Y "ip.dst==$OUT_A && esp" \
		-T fields -e udp.payload 2>/dev/null | tr -d ':'
}

check_capture() {	# CASE DIR
	ts="tshark -r $2/veth.pcapng -d udp.port==4500,udpencap"
	n_esp=$($ts -Y 'esp && udp.srcport == 4500 && udp.dstport == 4500' 2>/dev/null | wc -l)
	n_other=$($ts -Y 'ip && !(esp && udp.srcport == 4500 && udp.dstport == 4500)' 2>/dev/null | wc -l)
	check_match "$1: ESP in UDP 4500 on the veth ($n_esp frames)" '^[0-9]{4,}$' "$n_esp"
	check "$1: no other IP frame on the veth" 0 "$n_other"
	check "$1: the plaintext marker is not on the veth" 0 \
		"$(grep -ac "$MARK" "$2/veth.pcapng")"
	check_match "$1: the marker is on the N3IWF's TUN (control)" '^[1-9][0-9]*$' \
		"$(grep -ac "$MARK" "$2/tun.pcapng")"
}

# counters DIR ROLE: refreshes $S with that side's status (after settling).
counters() { settle; S=$2/$3.status; }

check_pings() {	# CASE DIR PROFILE
	l1=$(inb ping -c 20 -i 0.05 -W 2 $DN 2>&1 | sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p')
	check "$1: ping UE -> DN address, loss" 0 "$l1"
	l2=$(inb ping -c 10 -i 0.05 -W 2 $NAS 2>&1 | sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p')
	check "$1: ping UE -> NAS_IP, loss" 0 "$l2"
	counters x "$2" n3iwf
	if [ "$3" = nwu ]; then
		# 10 echo requests in on the signalling SA, 20 on the user
		# plane; the replies out on the same SAs.
		check "$1: N3IWF signalling SA in_packets" 10 "$(child "$S" signalling in_packets)"
		check "$1: N3IWF user-plane SA in_packets" 20 "$(child "$S" user in_packets)"
		check "$1: N3IWF signalling SA out_packets" 10 "$(child "$S" signalling out_packets)"
		check "$1: N3IWF user-plane SA out_packets" 20 "$(child "$S" user out_packets)"
		check_match "$1: user-plane SA with GRE, QFI 5" 'gre=1 qfi=5' "$(grep 'kind=user' "$S")"
		counters x "$2" ue
		check "$1: UE signalling SA in_packets" 10 "$(child "$S" signalling in_packets)"
		check "$1: UE user-plane SA in_packets" 20 "$(child "$S" user in_packets)"
	else
		check "$1: N3IWF one Child SA, in_packets" 30 "$(child "$S" user in_packets)"
		check "$1: no signalling SA" "" "$(grep 'kind=signalling' "$S")"
		check_match "$1: no GRE" 'gre=0' "$(grep 'kind=user' "$S")"
	fi
}

check_drops() {	# CASE DIR
	# The last one: inside the window. (With ESN, one left of the window
	# is taken for the next 2^32 epoch (RFC 4303 A2.2) and fails the ICV.)
	pkt=$(esp_hex "$2/veth.pcapng" | tail -n 1)
	check_match "$1: an ESP datagram UE -> N3IWF from the capture" '^[0-9a-f]{80,}$' "$pkt"
	send_hex "$NSB" "$pkt" $OUT_A
	counters x "$2" n3iwf
	check "$1: replayed datagram counted (engine)" 1 "$(stat "$S" in_replay)"
	check "$1: replayed datagram counted (its SA)" 1 \
		"$(child "$S" '[a-z]*' in_replay | awk '{ s += $1 } END { print s }')"
	# Sequence number 2^24 ahead (inside the window's reach) and the
	# last byte (ICV) changed: the window lets it through, the ICV not.
	bad=$(printf '%s' "$pkt" | python3 -c 'import sys
b = bytearray(bytes.fromhex(sys.stdin.read().strip()))
b[4] ^= 1; b[-1] ^= 0x55
print(b.hex())')
	send_hex "$NSB" "$bad" $OUT_A
	counters x "$2" n3iwf
	check "$1: tampered datagram fails the ICV (engine)" 1 "$(stat "$S" in_icv)"
	check "$1: tampered datagram fails the ICV (its SA)" 1 \
		"$(child "$S" '[a-z]*' in_icv | awk '{ s += $1 } END { print s }')"
	send_hex "$NSB" 0000dead0000000100000000 $OUT_A
	counters x "$2" n3iwf
	check "$1: unknown SPI counted as no_sa" 1 "$(stat "$S" no_sa)"
	# Non-ESP marker + a 28-byte IKE header: the IKE socket's.
	send_hex "$NSB" 00000000$(printf '%056d' 0 | sed 's/^\(.\{34\}\)00/\120/') $OUT_A
	counters x "$2" n3iwf
	check "$1: IKE datagram reached the IKE socket" 1 \
		"$(awk '$1 == "ike_datagrams" { print $2 }' "$S")"
	check_match "$1: the IKE side logged it" 'ike socket: 28-byte IKE message' \
		"$(cat "$2/n3iwf.log")"
	check "$1: the engine saw no IKE datagram" 0 "$(stat "$S" nonesp)"
	check "$1: no selector, GRE or QFI drops" "0 0 0 0" \
		"$(stat "$S" selector) $(stat "$S" gre_bad) $(stat "$S" qfi_bad) $(stat "$S" no_route)"
}

stop_side() {	# CASE DIR ROLE
	eval "p=\$PID_$3"
	kill -TERM "$p"
	wait "$p"
	check "$1: $3 exits 0 on SIGTERM" 0 $?
	check "$1: no sanitizer report in the $3 log" "" "$(crash_reports "$2/$3.log")"
	check "$1: no key bytes in the $3 log" "" \
		"$(awk '{ print $2 }' "$2/keys" | grep -F -f - "$2/$3.log")"
}

run_case() {	# PROFILE/ALG
	prof=${1%/*}; alg=${1#*/}; d=$TB/$prof-$alg
	mkdir -p "$d" && keys "$d/keys" "$alg"
	if ! net_up; then nok "$1: namespaces and veth"; return; fi
	if ! start "$NSA" n3iwf $OUT_A $OUT_B $NAS/24 "$prof" "$alg" "$d" ||
	    ! start "$NSB" ue $OUT_B $OUT_A $UE/24 "$prof" "$alg" "$d"; then
		nok "$1: dp-pair did not start: $(tail -n 2 "$d"/*.log)"
		return
	fi
	ok "$1: both sides up"
	ina ip addr add $DN/32 dev dpt0
	CAP_PIDS=""
	capture "$NSB" vb$$ "$d/veth.pcapng"
	capture "$NSA" dpt0 "$d/tun.pcapng"
	check_pings "$1" "$d" "$prof"
	tcp_transfer "$d"
	check "$1: 4 MB TCP UE -> DN, sha256 at both ends" \
		"$(sha256sum <"$d/tx.bin")" "$(sha256sum <"$d/rx.bin")"
	check_match "$1: transfer size" '^4[0-9]{6}$' "$(wc -c <"$d/rx.bin")"
	sleep 0.3
	for p in $CAP_PIDS; do kill -INT "$p"; wait "$p"; done
	check_capture "$1" "$d"
	check_drops "$1" "$d"
	stop_side "$1" "$d" ue
	stop_side "$1" "$d" n3iwf
	ip netns del "$NSA"; ip netns del "$NSB"
}

for c in $CASES; do run_case "$c"; done
