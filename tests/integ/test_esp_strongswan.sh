#!/bin/sh
# ESP interop with strongSwan (Debian's charon 5.9.8, kernel-libipsec):
# our data plane (`--tunnel yes`, --profile rfc7296) carries ping and TCP
# through the Child SA it negotiated with charon, both ways:
# - ike-ue -> charon (responder): the UE asks for an inner address in CP
#   and charon gives one from its pool (VIP); charon's TS = its inner
#   address IN_C/32, our UE routes IN_C/32 into its TUN;
# - charon -> ike-n3iwf (responder): charon's inner address is our
#   --inner-ip (static TS IN_C/32 <-> --nas-ip IN_O/32, the N3IWF's TUN).
# Modes psk and qkd+dh (RFC 8784 PPK = a QKD key from the kmsd testbed in
# our namespace, as in test_ike_strongswan.sh), AES-GCM-16-256, then
# AES-CBC-256 + HMAC-SHA2-256-128 (psk: case cbc; qkd+dh: cbc-qkd+dh), then
# psk with charon's aes256gcm16-noesn (noesn), and the ESN negotiation
# with aes256gcm16-esn (esn; no traffic: see case_esn).
#
# Checks per case: ping both ways with 0 loss; 3 MB of TCP each way
# (tests/tools/tcpsink) with the same SHA-256 at both ends; on the veth
# (dumpcap in charon's namespace) only ARP, IKE (500) and ESP in UDP 4500,
# and the plaintext marker never; charon's Child SA (swanctl --list-sas):
# the algorithm, UDP encapsulation, its SPIs = our status file's, its
# packet counters = our status file's (each way), its byte counters at
# least what went through, no ESN on either side (esn=0 in our status
# file, no esn in --list-sas); charon got our Delete.
#
# Where things run: charon in namespace C (tests/interop/charon.sh), our
# endpoint (and the kmsd testbed) in namespace O, one veth pair with
# 10.99.N.1 (O) and .2 (C); inner addresses 10.99.N.65 (O) and .66 (C).
# Needs root; a missing prerequisite fails. Bounded by LIMIT_S (480) s.
#   KEEP=1    keep the temp dir (logs, captures)
#   CASES="psk qkd+dh cbc cbc-qkd+dh noesn esn"
top=$(cd "$(dirname "$0")/../.." && pwd)
BINDIR=${BINDIR:-bin}
case $BINDIR in /*) ;; *) BINDIR=$top/$BINDIR ;; esac
IKE_UE=$BINDIR/ike-ue
IKE_N3IWF=$BINDIR/ike-n3iwf
TCPSINK=$top/${BUILD:-build}/tools/tcpsink
. "$top/tests/integ/lib.sh"			# cd $top; $TB; ok/nok/check
CS_HOME=$top/tests/interop
. "$top/tests/interop/charon.sh"

for b in "$IKE_UE" "$IKE_N3IWF" "$TCPSINK"; do
	[ -x "$b" ] || { nok "ESP interop: $b not built (make)"; exit 1; }
done
for b in ip dumpcap tshark ping timeout; do
	command -v "$b" >/dev/null 2>&1 || { nok "missing prerequisite: $b (mk/deps.sh)"; exit 1; }
done
[ "$(id -u)" = 0 ] || { nok "ESP interop needs root (network namespaces)"; exit 1; }

LIMIT_S=${LIMIT_S:-480}
CASES=${CASES:-psk qkd+dh cbc cbc-qkd+dh noesn esn}
UE_ID=ue.test
N3IWF_ID=n3iwf.test
MARK=QKD-IPSEC-PLAINTEXT-MARKER
NBYTES=3000000

CS_REG=$TB/cs.reg
OUR_PID=""
esp_cleanup() {
	[ -n "${WD:-}" ] && kill "$WD" 2>/dev/null
	[ -n "$OUR_PID" ] && cs_alive "$OUR_PID" && kill -KILL "$OUR_PID" 2>/dev/null
	sh tests/testbed.sh down "$TB" >/dev/null 2>&1
	cs_cleanup "$CS_REG"
	tb_cleanup
}
trap esp_cleanup EXIT
trap 'exit 1' INT TERM
cs_watchdog "$LIMIT_S"; WD=$CS_WD

if ! cs_install; then
	nok "install strongSwan (strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins)"
	exit 1
fi

# --- network ------------------------------------------------------------
net=$(cs_free_net) || { nok "no free 10.99.N.0/30"; exit 1; }
C=espC$$; O=espO$$
C_ADDR=$net.2; O_ADDR=$net.1	# outer (IKE, ESP in UDP)
IN_C=$net.66; IN_O=$net.65	# inner (the Child SA's TS)
VETH=espc$$			# charon's end of the pair
cs_ns_add $C && cs_ns_add $O || { nok "netns $C $O"; exit 1; }
cs_link $O espo$$ $O_ADDR/30 $C $VETH $C_ADDR/30 || { nok "veth pair"; exit 1; }
cs_addr $C $IN_C/32 || { nok "inner address $IN_C on $C's lo"; exit 1; }
ip -n $O link set lo up
# no IPv6 on the veth (its own link-local chatter is neither IKE nor ESP)
for x in "$O espo$$" "$C $VETH"; do
	set -- $x
	ip netns exec $1 sysctl -qw net.ipv6.conf.$2.disable_ipv6=1 || { nok "no IPv6 on $2"; exit 1; }
done
inO() { ip netns exec $O "$@"; }
inC() { ip netns exec $C "$@"; }
CD=$TB/charon
cs_start "$CD" $C || { nok "charon start: $(tail -n 3 "$CD/charon.log" 2>/dev/null)"; exit 1; }
ok "charon started in namespace $C with kernel-libipsec"

PSK=$(openssl rand -hex 24)
QKD_UP=""
qkd_up() {
	[ -n "$QKD_UP" ] && return 0
	inO sh tests/testbed.sh up "$TB" >"$TB/up.log" 2>&1 ||
	    { nok "kmsd testbed up: $(tail -n 3 "$TB/up.log")"; return 1; }
	. "$TB/testbed.env"
	QKD_UP=1
}
# qkd_enc a|b SLAVE: a 256-bit key by enc_keys at kmsd A (as sae-a) or B:
# QKD_ID, QKD_HEX (the PPK and its ID for charon).
qkd_enc() {
	case $1 in
	a) set -- "$KMSD_A_URL" "$SAE_A_CERT" "$SAE_A_KEY" "$2" ;;
	b) set -- "$KMSD_B_URL" "$SAE_B_CERT" "$SAE_B_KEY" "$2" ;;
	esac
	r=$(inO "$KMSCLIENT" --url "$1" --cert "$2" --key "$3" --ca "$CA" --json \
	    enc "$4" -s 256 2>"$TB/kmsclient.err")
	QKD_ID=$(json_get "$r" '.keys[0].key_ID')
	QKD_HEX=$(json_get "$r" '.keys[0].key' | base64 -d 2>/dev/null | od -An -v -tx1 | tr -d ' \n')
	[ ${#QKD_HEX} -eq 64 ] && [ -n "$QKD_ID" ]
}
auth_args() {	# MODE SIDE(ue|n3iwf)
	case $1 in
	psk) echo "--psk $PSK" ;;
	qkd+dh) if [ "$2" = ue ]; then
			echo "--psk $PSK --ppk-required yes --kmsd-url $KMSD_B_URL --kmsd-cert $SAE_B_CERT --kmsd-key $SAE_B_KEY --kmsd-ca $CA --peer-sae sae-a --ppk-key-id $QKD_ID"
		else
			echo "--psk $PSK --ppk-required yes --kmsd-url $KMSD_A_URL --kmsd-cert $SAE_A_CERT --kmsd-key $SAE_A_KEY --kmsd-ca $CA --peer-sae sae-b"
		fi ;;
	esac
}
charon_vars() {	# MODE
	case $1 in
	psk) echo "PSK=$PSK" ;;
	qkd+dh) echo "PSK=$PSK PPK=0x$QKD_HEX PPK_ID=$QKD_ID" ;;
	esac
}
tpl_of() { if [ "$1" = qkd+dh ]; then echo ppk-$2; else echo psk-$2; fi; }
# vip_tpl MODE: the responder template with a pool of one address (IN_O)
# for the CP request of our UE.
vip_tpl() {
	o=$TB/$(tpl_of "$1" responder)-vip.conf.in
	sed '/^[[:space:]]*encap = /a\
		pools = vip' "$CS_HOME/swanctl/$(tpl_of "$1" responder).conf.in" >"$o" &&
	    printf 'pools {\n\tvip {\n\t\taddrs = %s/32\n\t}\n}\n' "$IN_O" >>"$o" &&
	    echo "$o"
}

# --- the checks on a tunnel that is up ------------------------------------
loss() { sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p'; }
field() { sed -n "s/^child.* $1=\([0-9a-fx]*\).*/\1/p" "$2" | head -n 1; }
# tcp NAME FROM_NS TO_NS TO_ADDR PORT: NBYTES from FROM_NS to a sink in TO_NS
tcp() {
	out=$TB/sink-$5.out; rdy=$TB/sink-$5.ready
	rm -f "$out" "$rdy"
	ip netns exec "$3" timeout 30 "$TCPSINK" -l "$4:$5" -n 1 -o "$out" -r "$rdy" &
	sp=$!
	i=0; while [ ! -s "$rdy" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	exp=$(ip netns exec "$2" timeout 30 "$TCPSINK" -c "$4:$5" -b $NBYTES -m "$MARK")
	wait "$sp"
	check_match "$1: TCP sender sent $NBYTES bytes" "^bytes=$NBYTES sha256=[0-9a-f]{64}\$" "$exp"
	check "$1: the sink got the same bytes and SHA-256" "$exp" "$(cat "$out" 2>/dev/null)"
}
# le_ge NAME RECEIVED SENT MIN: MIN <= RECEIVED <= SENT
le_ge() {
	if [ -n "$2" ] && [ -n "$3" ] && [ "$2" -ge "$4" ] && [ "$2" -le "$3" ]; then
		ok "$1: received $2, sent $3 (>= $4)"
	else
		nok "$1: received [$2], sent [$3]: want $4 <= received <= sent"
	fi
}
# traffic NAME STATUS_FILE ESP_NAME: everything above, while the SA is up
traffic() {
	n=$1; st=$2
	ip netns exec $C dumpcap -q -P -i $VETH -w "$TB/veth.pcap" >"$TB/dumpcap.log" 2>&1 &
	dc=$!
	i=0; while ! grep -q "Capturing on" "$TB/dumpcap.log" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	check "$n: ping ours -> charon ($IN_O -> $IN_C), loss" 0 \
	    "$(inO ping -c 20 -i 0.05 -W 2 -I $IN_O $IN_C 2>&1 | loss)"
	check "$n: ping charon -> ours ($IN_C -> $IN_O), loss" 0 \
	    "$(inC ping -c 20 -i 0.05 -W 2 -I $IN_C $IN_O 2>&1 | loss)"
	tcp "$n: ours -> charon" $O $C $IN_C 7001
	tcp "$n: charon -> ours" $C $O $IN_O 7002
	# IPv6 into our TUN: outside the Child SA's TS (IPv4), never sent
	ip netns exec $O ping -6 -c 3 -i 0.2 -W 1 -I qkd0 ff02::1 >/dev/null 2>&1
	sleep 1.3	# the status file is rewritten every second
	kill -INT "$dc" 2>/dev/null; wait "$dc"
	wire_checks "$n" "$TB/veth.pcap" "the veth"
	l=$(cs_sas "$CD" | head -n 1)
	check "$n: Child SA on charon" "INSTALLED $(cs_esp_name "$3")" "$(echo "$l" | cs_line_child_summary)"
	check "$n: charon's Child SA is UDP-encapsulated" yes "$(echo "$l" | cs_line_child encap)"
	check "$n: charon's inbound SPI = our outbound SPI" "$(field out_spi "$st" | sed 's/^0x//')" "$(echo "$l" | cs_line_child spi-in)"
	check "$n: charon's outbound SPI = our inbound SPI" "$(field in_spi "$st" | sed 's/^0x//')" "$(echo "$l" | cs_line_child spi-out)"
	# each way: what the receiver counts <= what the sender counts (a
	# datagram may be lost on the way, as for TCP any retransmission),
	# and >= what the applications sent: 40 pings, NBYTES / 1400 (MTU)
	pmin=$((40 + NBYTES / 1400))
	le_ge "$n: packets ours -> charon" "$(echo "$l" | cs_line_child packets-in)" "$(field out_packets "$st")" $pmin
	le_ge "$n: packets charon -> ours" "$(field in_packets "$st")" "$(echo "$l" | cs_line_child packets-out)" $pmin
	le_ge "$n: bytes ours -> charon" "$(echo "$l" | cs_line_child bytes-in)" "$(field out_bytes "$st")" $NBYTES
	le_ge "$n: bytes charon -> ours" "$(field in_bytes "$st")" "$(echo "$l" | cs_line_child bytes-out)" $NBYTES
	nr=$(sed -n 's/^dp no_route //p' "$st")
	[ "${nr:-0}" -ge 3 ] && ok "$n: IPv6 from our TUN not sent (no_route $nr)" ||
	    nok "$n: IPv6 from our TUN not sent: no_route [$nr] < 3"
	check "$n: charon discarded nothing by policy (TS)" "" \
	    "$(grep 'due to policy' "$CD/charon.log" | head -n 2)"
	check "$n: our status file: no ICV, replay or padding drop" "0 0 0" \
	    "$(field in_icv "$st") $(field in_replay "$st") $(field in_pad "$st")"
	# charon's proposals here have no ESN (its default, or -noesn): our
	# offer (ESN, NO_ESN) or choice ends on NO_ESN, both sides say so
	check "$n: our status file: 32-bit sequence numbers (esn=0)" 0 "$(field esn "$st")"
	check "$n: charon's Child SA without ESN (no esn in --list-sas)" "" "$(echo "$l" | cs_line_child esn)"
}
# stop_ours NAME LOG: SIGTERM, exit 0, no crash report
stop_ours() {
	kill -TERM "$OUR_PID" 2>/dev/null
	i=0; while cs_alive "$OUR_PID" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	if cs_alive "$OUR_PID"; then kill -KILL "$OUR_PID"; wait "$OUR_PID"; rc=killed; else wait "$OUR_PID"; rc=$?; fi
	OUR_PID=""
	check "$1: exits 0 on SIGTERM" 0 "$rc"
	check "$1: no sanitizer or crash report" "" "$(crash_reports "$2")"
}
NFAIL=0; NFAIL_SEEN=0
nok() { echo "not ok - $*"; NFAIL=$((NFAIL + 1)); }
case_end() {	# LOG: on a failure, the logs' last lines
	if [ $NFAIL -ne $NFAIL_SEEN ]; then
		for f in "$1" "$CD/charon.log"; do
			echo "# --- $(basename "$f"), last lines:"
			grep -v 'vici' "$f" 2>/dev/null | tail -n 15 | sed 's/^/#   /'
		done
	fi
	NFAIL_SEEN=$NFAIL
	cs_swanctl "$CD" --terminate --ike ike --force --timeout 1 >/dev/null 2>&1
	: >"$CD/charon.log"
}

# Case 1: ike-ue -> charon.
case_ue() {	# MODE CIPHER(aes-gcm|aes-cbc) ESP_PROPOSAL IKE_PROPOSAL
	n="ike-ue -> charon, $1, $3"; log=$TB/ue-$1-$2.log; st=$TB/ue-$1-$2.status
	if [ "$1" = qkd+dh ]; then
		qkd_up && qkd_enc a sae-b || { nok "$n: a QKD key from kmsd A"; return; }
	fi
	tpl=$(vip_tpl "$1") && cs_load "$CD" "$tpl" LOCAL_ADDRS=$C_ADDR ENCAP=yes \
	    LOCAL_ID=$N3IWF_ID REMOTE_ID=$UE_ID IKE_PROPOSALS=$4 ESP_PROPOSALS=$3 \
	    LOCAL_TS=$IN_C/32 REMOTE_TS=dynamic $(charon_vars "$1") ||
	    { nok "$n: load charon's config"; case_end "$log"; return; }
	ip netns exec $O "$IKE_UE" --profile rfc7296 --mode "$1" --local $O_ADDR \
	    --peer $C_ADDR:500 --id $UE_ID --dh 19 --cipher "$2" $(auth_args "$1" ue) \
	    --tunnel yes --tun-route $IN_C/32 --status-file "$st" \
	    --log-level debug </dev/null >"$log" 2>&1 &
	OUR_PID=$!
	i=0; while ! grep -q 'tunnel up' "$log" 2>/dev/null && cs_alive $OUR_PID && [ $i -lt 300 ]; do sleep 0.05; i=$((i + 1)); done
	up=$(grep -o 'tunnel up: .*' "$log")
	check "$n: ike-ue's tunnel up with charon's VIP" "tunnel up: inner $IN_O" "$up"
	if [ -z "$up" ]; then stop_ours "$n" "$log"; case_end "$log"; return; fi
	[ "$1" = qkd+dh ] && check "$n: charon used the PPK" yes "$(cs_ike_get "$CD" ppk)"
	traffic "$n" "$st" "$3"
	stop_ours "$n: ike-ue" "$log"
	i=0; while [ -n "$(cs_sas "$CD")" ] && [ $i -lt 60 ]; do sleep 0.05; i=$((i + 1)); done
	check "$n: ike-ue's Delete reached charon (no SA left)" "" "$(cs_sas "$CD")"
	case_end "$log"
}

# Case 2: charon -> ike-n3iwf.
case_n3iwf() {	# MODE CIPHER ESP_PROPOSAL IKE_PROPOSAL
	n="charon -> ike-n3iwf, $1, $3"; log=$TB/n3iwf-$1-$2.log; st=$TB/n3iwf-$1-$2.status
	if [ "$1" = qkd+dh ]; then
		qkd_up && qkd_enc b sae-a || { nok "$n: a QKD key from kmsd B"; return; }
	fi
	rm -f "$TB/n3iwf.ready"
	ip netns exec $O "$IKE_N3IWF" --profile rfc7296 --mode "$1" --listen $O_ADDR:500 \
	    --id $N3IWF_ID --dh 19 --cipher "$2" $(auth_args "$1" n3iwf) \
	    --tunnel yes --nas-ip $IN_O --inner-ip $IN_C --status-file "$st" \
	    --ready-file "$TB/n3iwf.ready" --log-level debug </dev/null >"$log" 2>&1 &
	OUR_PID=$!
	i=0; while [ ! -s "$TB/n3iwf.ready" ] && cs_alive $OUR_PID && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	[ -s "$TB/n3iwf.ready" ] || { nok "$n: ike-n3iwf is up"; stop_ours "$n" "$log"; case_end "$log"; return; }
	cs_load "$CD" "$(tpl_of "$1" initiator)" LOCAL_ADDRS=$C_ADDR REMOTE_ADDRS=$O_ADDR \
	    ENCAP=yes LOCAL_ID=$UE_ID REMOTE_ID=$N3IWF_ID IKE_PROPOSALS=$4 \
	    ESP_PROPOSALS=$3 LOCAL_TS=$IN_C/32 REMOTE_TS=$IN_O/32 $(charon_vars "$1") ||
	    { nok "$n: load charon's config"; stop_ours "$n" "$log"; case_end "$log"; return; }
	if ! cs_initiate "$CD" 10; then
		nok "$n: swanctl --initiate: $(grep -E 'failed|error|notify' "$CD/initiate.log" | tail -n 2 | tr '\n' ' ')"
		stop_ours "$n" "$log"; case_end "$log"; return
	fi
	ok "$n: swanctl --initiate"
	[ "$1" = qkd+dh ] && check "$n: charon used the PPK" yes "$(cs_ike_get "$CD" ppk)"
	i=0; while ! grep -q '^child ' "$st" 2>/dev/null && [ $i -lt 60 ]; do sleep 0.05; i=$((i + 1)); done
	traffic "$n" "$st" "$3"
	cs_terminate "$CD"
	check "$n: charon's Delete answered" 0 $?
	stop_ours "$n: ike-n3iwf" "$log"
	case_end "$log"
}

# ESN (RFC 4303 A2) with charon: Debian's charon 5.9.8 can negotiate it
# but its userspace ESP (libipsec) refuses to install an ESN SA ("IPsec SA:
# ESN not supported"), and this kernel's XFRM has no ESP algorithms: no
# traffic can pass over an ESN Child SA with charon here. What is checked:
# the negotiation on the wire, both ways. charon's proposal aes256gcm16-esn
# (ESN only):
# - ike-ue -> charon: charon selects ESN from our offer (ESN, NO_ESN), then
#   fails to install it and answers without the Child SA;
# - charon -> ike-n3iwf: we choose ESN (charon logs the selected proposal
#   with EXT_SEQ) and install our SA with ESN; with --esn no we answer
#   NO_PROPOSAL_CHOSEN to the ESN-only offer.
case_esn() {
	n="ike-ue -> charon, psk, aes256gcm16-esn"; log=$TB/ue-esn.log
	cs_load "$CD" "$(vip_tpl psk)" LOCAL_ADDRS=$C_ADDR ENCAP=yes \
	    LOCAL_ID=$N3IWF_ID REMOTE_ID=$UE_ID IKE_PROPOSALS=aes256gcm16-prfsha256-ecp256 \
	    ESP_PROPOSALS=aes256gcm16-esn LOCAL_TS=$IN_C/32 REMOTE_TS=dynamic PSK=$PSK ||
	    { nok "$n: load charon's config"; case_end "$log"; return; }
	ip netns exec $O "$IKE_UE" --profile rfc7296 --mode psk --local $O_ADDR \
	    --peer $C_ADDR:500 --id $UE_ID --dh 19 --cipher aes-gcm --psk $PSK \
	    --tunnel yes --tun-route $IN_C/32 --retransmit-tries 2 \
	    --log-level debug </dev/null >"$log" 2>&1 &
	OUR_PID=$!
	i=0; while ! grep -q 'ESN not supported' "$CD/charon.log" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	check_match "$n: charon selected ESN from our offer" 'selected proposal: ESP:AES_GCM_16_256/EXT_SEQ' "$(cat "$CD/charon.log")"
	check_match "$n: charon's libipsec refuses the ESN SA" 'IPsec SA: ESN not supported' "$(cat "$CD/charon.log")"
	i=0; while cs_alive "$OUR_PID" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	cs_alive "$OUR_PID" && kill -TERM "$OUR_PID"
	wait "$OUR_PID"; OUR_PID=""
	check "$n: ike-ue: no tunnel without the Child SA" 0 "$(grep -c 'tunnel up' "$log")"
	check "$n: no sanitizer or crash report" "" "$(crash_reports "$log")"
	case_end "$log"
	for esn in yes no; do
		n="charon -> ike-n3iwf, psk, aes256gcm16-esn, --esn $esn"; log=$TB/n3iwf-esn-$esn.log
		rm -f "$TB/n3iwf.ready"
		ip netns exec $O "$IKE_N3IWF" --profile rfc7296 --mode psk --listen $O_ADDR:500 \
		    --id $N3IWF_ID --dh 19 --cipher aes-gcm --psk $PSK --esn $esn \
		    --tunnel yes --nas-ip $IN_O --inner-ip $IN_C \
		    --ready-file "$TB/n3iwf.ready" --log-level debug </dev/null >"$log" 2>&1 &
		OUR_PID=$!
		i=0; while [ ! -s "$TB/n3iwf.ready" ] && cs_alive $OUR_PID && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
		[ -s "$TB/n3iwf.ready" ] || { nok "$n: ike-n3iwf is up"; stop_ours "$n" "$log"; case_end "$log"; continue; }
		cs_load "$CD" "$CS_HOME/swanctl/psk-initiator.conf.in" LOCAL_ADDRS=$C_ADDR REMOTE_ADDRS=$O_ADDR \
		    ENCAP=yes LOCAL_ID=$UE_ID REMOTE_ID=$N3IWF_ID IKE_PROPOSALS=aes256gcm16-prfsha256-ecp256 \
		    ESP_PROPOSALS=aes256gcm16-esn LOCAL_TS=$IN_C/32 REMOTE_TS=$IN_O/32 PSK=$PSK ||
		    { nok "$n: load charon's config"; stop_ours "$n" "$log"; case_end "$log"; continue; }
		cs_initiate "$CD" 10
		if [ $esn = yes ]; then
			check_match "$n: charon's selected proposal has ESN (EXT_SEQ)" \
			    'selected proposal: ESP:AES_GCM_16_256/EXT_SEQ' "$(cat "$CD/charon.log")"
			check_match "$n: we installed the Child SA with ESN" \
			    'data plane: user-plane Child SA in [0-9a-f]{8} out [0-9a-f]{8} installed \(ESN\)' "$(cat "$log")"
			check_match "$n: then charon's libipsec refuses it" 'IPsec SA: ESN not supported' "$(cat "$CD/charon.log")"
		else
			check_match "$n: we refuse the ESN-only proposal" \
			    'refused \(NO_PROPOSAL_CHOSEN\): no acceptable ESP proposal' "$(cat "$log")"
			check_match "$n: charon gets NO_PROPOSAL_CHOSEN" \
			    'parsed IKE_AUTH response 1 \[ N\(NO_PROP\) \]' "$(grep 'parsed IKE_AUTH' "$CD/charon.log")"
			check "$n: no Child SA installed on our side" 0 "$(grep -c 'Child SA in .* installed' "$log")"
		fi
		cs_swanctl "$CD" --terminate --ike ike --force --timeout 1 >/dev/null 2>&1
		stop_ours "$n: ike-n3iwf" "$log"
		case_end "$log"
	done
}

for m in $CASES; do
	case $m in
		psk | qkd+dh)
			case_ue $m aes-gcm aes256gcm16 aes256gcm16-prfsha256-ecp256
			case_n3iwf $m aes-gcm aes256gcm16 aes256gcm16-prfsha256-ecp256 ;;
		cbc)
			case_ue psk aes-cbc aes256-sha256 aes256-sha256-ecp256
			case_n3iwf psk aes-cbc aes256-sha256 aes256-sha256-ecp256 ;;
		cbc-qkd+dh)
			case_ue qkd+dh aes-cbc aes256-sha256 aes256-sha256-ecp256
			case_n3iwf qkd+dh aes-cbc aes256-sha256 aes256-sha256-ecp256 ;;
		noesn)
			case_ue psk aes-gcm aes256gcm16-noesn aes256gcm16-prfsha256-ecp256
			case_n3iwf psk aes-gcm aes256gcm16-noesn aes256gcm16-prfsha256-ecp256 ;;
		esn) case_esn ;;
		*) nok "unknown case $m" ;;
		esac
done
exit 0
