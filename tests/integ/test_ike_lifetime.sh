#!/bin/sh
# Hard lifetimes of the tunnel's SAs (RFC 7296 2.8: hard lifetimes delete),
# with the real ike-ue and ike-n3iwf in the testbed (tests/testbed.sh up DIR
# --tunnel --mode psk), each case with a hard limit on ONE side and no soft
# rekey able to come first (no soft byte/packet limit; --child-soft 0 /
# --ike-soft 0: no rekey by time):
#   bytes     the UE: --child-hard-bytes; big pings fill the user-plane SA
#   packets   the N3IWF: --child-hard-packets; pings fill it
#   seconds   the UE: --child-soft 0 --child-hard 8; both Child SAs expire
#             (a few pings before)
# For each: the side at its limit logs it and deletes the Child SA, the
# peer logs the Delete it received (the same SPIs); on the NWu link
# (dumpcap) one INFORMATIONAL request from that side and one response from
# the peer; no ESP with the dead SA's SPIs after the Delete; both status
# files no longer list the SA, and the engines' pair counts (dp child_sas)
# go from 2 to 1 (0 for seconds); later pings are not sent (no_route grows
# at the UE, nothing reaches the DN).
#   ike       the N3IWF: --ike-soft 0 --ike-hard 10, the UE rekeys its
#             Child SAs every ~2 s, and an iptables u32 rule in the UE's namespace
#             drops the UE's INFORMATIONAL requests (its Deletes of the
#             replaced SAs): at the hard lifetime the N3IWF's IKE SA still
#             holds replaced Child SAs waiting for their Delete (logged);
#             it deletes the IKE SA, the UE logs it and ends; the N3IWF's
#             engine then holds 0 SAs (the slot leak: replaced SAs stayed
#             until exit), and so does the UE's (its last status file).
# First: --check-config refuses a soft lifetime of 0 (no rekey) without a
# hard one, naming the setting.
# Needs root, ip, iptables, socat, dumpcap, tshark, python3.
. "$(dirname "$0")/lib.sh"
tunnel_test_init life ip iptables socat dumpcap tshark python3 "$top/${BUILD:-build}/tools/tcpsink"

stat() { sed -n "s/^dp $2 //p" "$1"; }
kinds() { sed -n 's/^child .*kind=\([a-z]*\) .*/\1/p' "$1" | sort | tr '\n' ' '; }
# spis FILE KIND: "in out" SPIs of the status file's SA of that kind
spis() { sed -n "s/^child in_spi=0x\([0-9a-f]*\) out_spi=0x\([0-9a-f]*\) .*kind=$2 .*/\1 \2/p" "$1"; }
settle() { sleep 1.3; }	# the status files are rewritten every second
inue() { ip netns exec "$UE_NETNS" "$@"; }
# wait_log FILE PATTERN SECONDS: until the log has the line
wait_log() {
	i=0
	while ! grep -q "$2" "$1" && [ $i -lt $(($3 * 20)) ]; do sleep 0.05; i=$((i + 1)); done
	grep -q "$2" "$1"
}
up() {	# TITLE UE_ARGS N3IWF_ARGS
	rm -rf "$TBT"; mkdir -p "$TBT"
	if ! UE_ARGS=$2 N3IWF_ARGS=$3 sh "$TB_SH" up "$TBT" --tunnel --mode psk >"$TBT/up.log" 2>&1; then
		nok "$1: testbed up --tunnel: $(tail -n 3 "$TBT/up.log")"
		sh "$TB_SH" down "$TBT" >/dev/null 2>&1
		return 1
	fi
	. "$TBT/testbed.env"
	settle
	check "$1: UE engine holds 2 SAs at first" 2 "$(stat "$UE_STATUS" child_sas)"
	check "$1: N3IWF engine holds 2 SAs at first" 2 "$(stat "$N3IWF_STATUS" child_sas)"
}
# ts FILTER FIELD: that field of each frame of the NWu capture that matches
ts() { tshark -r "$TBT/nwu.pcap" -d udp.port==4500,udpencap -Y "$1" -T fields -e "$2" 2>/dev/null; }

# child_case TITLE WHO(ue|n3iwf) KINDS_GONE UE_ARGS N3IWF_ARGS TRAFFIC
# TRAFFIC: ping arguments from the UE to DN_ADDR that reach the limit
child_case() {
	t=$1; who=$2
	up "$t" "$4" "$5" || return
	if [ "$who" = ue ]; then me=$UE_LOG; peer=$N3IWF_LOG; src=$UE_NWU_ADDR; dst=$N3IWF_NWU_ADDR
	else me=$N3IWF_LOG; peer=$UE_LOG; src=$N3IWF_NWU_ADDR; dst=$UE_NWU_ADDR; fi
	old_u=$(spis "$UE_STATUS" user); old_s=$(spis "$UE_STATUS" signalling)
	nwu_capture
	# shellcheck disable=SC2086 # TRAFFIC: several arguments
	[ -z "$6" ] || inue ping $6 "$DN_ADDR" >/dev/null 2>&1
	wait_log "$me" "hard lifetime reached, deleted" 15 ||
	    nok "$t: $who: no hard lifetime reached: $(grep -E 'hard|Delete|delete' "$me" | tail -n 2)"
	n=1; [ "$3" = "signalling user" ] && n=2
	i=0; while [ "$(grep -c 'deleted by the peer' "$peer")" -lt $n ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	settle; settle
	mine=$(sed -n 's/.*Child SA \([0-9a-f]*\/[0-9a-f]*\): hard lifetime reached, deleted.*/\1/p' "$me" | sort | tr '\n' ' ')
	theirs=$(sed -n 's/.*Child SA \([0-9a-f]*\/[0-9a-f]*\) deleted by the peer.*/\1/p' "$peer" | sort | tr '\n' ' ')
	check "$t: $who deleted $n Child SA(s) at the hard limit" "$n" "$(printf '%s' "$mine" | wc -w)"
	check "$t: the peer logged the Delete of the same Child SA(s)" "$mine" "$theirs"
	case $t in
	bytes|packets) check_match "$t: the engine reported the limit ($who)" \
	    'reached a hard byte, packet or sequence number limit' "$(cat "$me")" ;;
	esac
	# later packets: not sent through the dead SA
	nr0=$(stat "$UE_STATUS" no_route); dn0=$(stat "$N3IWF_STATUS" in_packets)
	inue ping -c 5 -i 0.1 -W 1 "$DN_ADDR" >/dev/null 2>&1
	settle
	kill -INT "$dc" 2>/dev/null; wait "$dc"
	nr=$(stat "$UE_STATUS" no_route)
	[ "$nr" -ge $((nr0 + 5)) ] && ok "$t: later pings not sent (UE no_route $nr0 -> $nr)" ||
	    nok "$t: later pings: UE no_route $nr0 -> $nr"
	check "$t: no packet reached the N3IWF's TUN meanwhile" "$dn0" "$(stat "$N3IWF_STATUS" in_packets)"
	# on the wire: the Delete and its answer, then no ESP of the dead SAs
	# (message IDs: a retransmission under load is the same exchange)
	req=$(ts "isakmp.exchangetype == 37 && ip.src == $src && isakmp.flag_r == 0" isakmp.messageid)
	rsp=$(ts "isakmp.exchangetype == 37 && ip.src == $dst && isakmp.flag_r == 1" isakmp.messageid)
	check "$t: INFORMATIONAL requests from the $who on NWu" "$n" "$(printf '%s\n' "$req" | sort -u | grep -c .)"
	check "$t: INFORMATIONAL responses from the peer on NWu" "$n" "$(printf '%s\n' "$rsp" | sort -u | grep -c .)"
	# after the last answer (and 0.1 s for a batch the engine had
	# encrypted before it unrouted the SA)
	last=$(ts "isakmp.exchangetype == 37 && ip.src == $dst && isakmp.flag_r == 1" frame.time_relative |
	    tail -n 1 | awk '{ printf "%.6f", $1 + 0.1 }')
	dead=""
	for k in $3; do
		[ "$k" = user ] && set -- $old_u || set -- $old_s
		dead="$dead${dead:+ || }esp.spi == 0x$1 || esp.spi == 0x$2"
	done
	n0=$(ts "frame.time_relative <= ${last:-0} && ($dead)" frame.number | grep -c .)
	[ "$n0" -gt 0 ] && ok "$t: $n0 ESP frames of the dead SA(s) before their Delete" ||
	    nok "$t: no ESP of the dead SA(s) [$dead] before their Delete"
	check "$t: no ESP of the dead SA(s) after the Delete" "" \
	    "$(ts "frame.time_relative > ${last:-0} && ($dead)" frame.number | head -n 3)"
	left=$(kinds "$UE_STATUS")
	for f in "$UE_STATUS" "$N3IWF_STATUS"; do
		w=$(basename "$f" .status)
		k=$(kinds "$f")
		check "$t: $w status: SAs left" "$left" "$k"
		for g in $3; do
			case " $k" in *" $g "*) nok "$t: $w status still lists the $g SA" ;; *) ok "$t: $w status: the $g SA is gone" ;; esac
		done
		check "$t: $w engine SA count" $((2 - n)) "$(stat "$f" child_sas)"
	done
	grep -q 'kind=user .*hard=1\|kind=signalling .*hard=1' "$UE_STATUS" "$N3IWF_STATUS" &&
	    nok "$t: an SA past its hard limit is still installed"
	check "$t: ike-ue still holds its IKE SA" 1 "$(pgrep -c -F "$TBT/ike-ue.pid" 2>/dev/null || echo 0)"
	check "no sanitizer or crash report ($t)" "" "$(crash_reports "$UE_LOG" "$N3IWF_LOG")"
	sh "$TB_SH" down "$TBT" >/dev/null 2>&1
}

# no rekey by time (soft 0) needs a hard lifetime; the message names it
cc() {	# LINES: ike-ue --check-config on a file with them; its message
	printf '[ike]\nmode = psk\npsk = x\npeer = 127.0.0.1:500\nca = %s\n%b\n' \
	    "$CA" "$1" >"$TBT/cc.ini"
	"$BINDIR/ike-ue" --check-config "$TBT/cc.ini" 2>&1
}
CA=$top/certs/out/ca.crt
check "config: child_soft_s 0 without a hard lifetime" \
    "ike-ue: config: child_soft_s: 0 (no rekey) needs a hard lifetime" "$(cc 'child_soft_s = 0')"
check "config: ike_soft_s 0 without a hard lifetime" \
    "ike-ue: config: ike_soft_s: 0 (no rekey) needs a hard lifetime" \
    "$(cc 'child_soft_s = 0\nchild_hard_s = 5\nike_soft_s = 0')"
check "config: soft 0 with hard lifetimes" "ike-ue: config is valid" \
    "$(cc 'child_soft_s = 0\nchild_hard_s = 5\nike_soft_s = 0\nike_hard_s = 60')"

child_case bytes ue user "--child-hard-bytes 300000" "" "-c 300 -i 0.01 -s 1300 -W 1"
child_case packets n3iwf user "" "--child-hard-packets 200" "-c 300 -i 0.01 -W 1"
child_case seconds ue "signalling user" "--child-soft 0 --child-hard 8" "" "-c 3 -i 0.2 -W 1"

# --- the IKE SA's hard lifetime with replaced Child SAs left (slot leak) ---
t=ike
if up "$t" "--child-soft 2 --child-hard 30 --rekey-jitter 0" "--ike-soft 0 --ike-hard 12"; then
	# the UE's INFORMATIONAL requests dropped as they leave (IKE on 4500:
	# the non-ESP marker at IP offset 28, then the header: exchange type
	# 37 at 50, flags at 51 without R (0x20))
	inue iptables -A OUTPUT -p udp --dport 4500 -m u32 \
	    --u32 "28=0 && 48&0xFF20=0x2500" -j DROP ||
	    nok "$t: iptables in the UE namespace"
	wait_log "$N3IWF_LOG" "IKE SA hard lifetime reached" 20 ||
	    nok "$t: the N3IWF's IKE SA did not reach its hard lifetime"
	wait_log "$UE_LOG" "hold ended" 10 || nok "$t: ike-ue did not end"
	settle; settle
	rk=$(grep -c 'Child SA rekeyed' "$N3IWF_LOG")
	[ "$rk" -ge 1 ] && ok "$t: $rk Child SA rekey(s) before" || nok "$t: no Child SA rekey"
	old=$(sed -n 's/.*IKE SA hard lifetime reached: .*; \([0-9]*\) replaced not yet deleted.*/\1/p' "$N3IWF_LOG")
	[ "${old:-0}" -ge 1 ] && ok "$t: $old replaced Child SA(s) waiting for their Delete at the hard lifetime" ||
	    nok "$t: no replaced Child SA left at the hard lifetime [$old]"
	check "$t: the UE got the N3IWF's Delete of the IKE SA" 1 "$(grep -c 'hold ended: the N3IWF deleted the IKE SA' "$UE_LOG")"
	check "$t: N3IWF engine holds 0 SAs" 0 "$(stat "$N3IWF_STATUS" child_sas)"
	check "$t: N3IWF status lists no SA" "" "$(grep '^child' "$N3IWF_STATUS")"
	check "$t: UE engine held 0 SAs at the end (last status)" 0 "$(stat "$UE_STATUS" child_sas)"
	check "$t: UE status lists no SA" "" "$(grep '^child' "$UE_STATUS")"
	check "no sanitizer or crash report ($t)" "" "$(crash_reports "$UE_LOG" "$N3IWF_LOG")"
	sh "$TB_SH" down "$TBT" >/dev/null 2>&1
fi
exit 0
