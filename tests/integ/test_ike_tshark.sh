#!/bin/sh
# Captures of every mode decode in tshark with no malformed-packet warnings
# (issue 4). For each mode (psk, cert, qkd, qkd+dh; qkd also with the prf
# QKD key schedule, "qkd-prf") in both profiles (nwu,
# rfc7296), plus two runs moved to the NAT-T port (--force-natt yes), one
# connection ike-ue -> ike-n3iwf on 127.0.0.1 is captured on lo with dumpcap,
# the capture filter restricted to the two UDP ports of the N3IWF (IKE and
# NAT-T), then decoded with tshark (IKE port as isakmp, NAT-T port as
# udpencap: non-ESP marker, then isakmp). Per run it checks:
# - every captured frame is IKEv2 (version 2.0), on the NAT-T port each one
#   behind a non-ESP marker;
# - the packets per exchange type (nwu: IKE_SA_INIT 2, IKE_AUTH 10,
#   CREATE_CHILD_SA 2, INFORMATIONAL 2; rfc7296: 2, 2, 0, 2; the qkd modes
#   have 2 more IKE_SA_INIT: the COOKIE round trip the N3IWF demands before
#   it draws QKD keys) and that the wire matches both endpoints' --csv-msgs
#   rows (exchange, MID, direction, request/response, IKE length, frame
#   length), the INFORMATIONAL Delete exchange, which the CSVs do not list,
#   and (N3IWF side) the stateless COOKIE pair apart;
# - no malformed packet, no expert info of severity error or warning
#   (tshark -V and -z expert);
# - tshark names our private numbers (KE 1025/1026, notifies 51000-51002) as
#   private / unknown, not as someone else's assignment, and every other
#   number it decodes as a registered one (USE_PPK 16435 is "RESERVED TO
#   IANA" in tshark 4.0: allowed);
# - IKE_SA_INIT: qkd modes: the first response is only a COOKIE (32 bytes)
#   and the second request starts with it; the last pair: qkd: no KE payload either way, KE transform 1025, the
#   response's QKD_KEY_IDS (51000) has 1 + 13 x 16 = 209 bytes of data
#   starting with count 13, the request's QKD_REQUEST (51001) is "sae-b";
#   qkd-prf: the same with KE transform 1026 and 1 + 16 = 17 bytes of
#   QKD_KEY_IDS starting with count 1;
#   psk, cert, qkd+dh: a KE payload both ways, group 14, no QKD_KEY_IDS;
#   qkd+dh: USE_PPK (16435, empty) both ways.
# A self-check corrupts one captured packet and requires the malformed check
# to flag it (so that check cannot pass by not matching tshark's wording).
# Without tshark/dumpcap, or without the right to capture on lo, it prints
# "not ok" (Debian: apt-get install tshark). Its time is printed, not
# asserted: speed goals live in bench/, and this machine is shared.
#   KEEP=1  keep the temp dir (captures, decodes, logs)
#   CASES="qkd/nwu psk/rfc7296 qkd/nwu/natt ..."  a subset
. "$(dirname "$0")/lib.sh"
t0=$(date +%s)
N3=$BINDIR/ike-n3iwf
UE=$BINDIR/ike-ue
CASES=${CASES:-psk/nwu cert/nwu qkd/nwu qkd+dh/nwu psk/rfc7296 cert/rfc7296 \
qkd/rfc7296 qkd+dh/rfc7296 qkd/nwu/natt qkd+dh/rfc7296/natt qkd-prf/nwu \
qkd-prf/rfc7296}

for b in "$N3" "$UE"; do
	[ -x "$b" ] || { nok "tshark: $b not built"; exit 1; }
done
for b in tshark dumpcap text2pcap jq; do
	command -v "$b" >/dev/null 2>&1 || {
		nok "tshark: $b not installed (Debian: apt-get install tshark jq)"; exit 1; }
done
if ! dumpcap -D 2>/dev/null | grep -q '\blo\b'; then
	nok "tshark: dumpcap cannot list lo (needs root or CAP_NET_RAW): $(dumpcap -D 2>&1 | tail -n 1)"
	exit 1
fi
tb_up

# Two free UDP ports (IKE, NAT-T) in 20000-31999, below the ephemeral range
# (32768-) so that no other test's client socket lands on them mid-capture.
P=
b=$((20000 + ($$ % 5990) * 2))
for i in 1 2 3 4 5 6 7 8 9 10; do
	if [ -z "$(ss -Hlun "( sport = :$b or sport = :$((b + 1)) )" 2>/dev/null)" ]; then
		P=$b; Q=$((b + 1)); break
	fi
	b=$((b + 2))
done
[ -n "$P" ] || { nok "tshark: no free UDP port pair"; exit 1; }
# tshark with our ports decoded as IKEv2 (NAT-T: non-ESP marker first)
ts() { tshark -d "udp.port==$P,isakmp" -d "udp.port==$Q,udpencap" "$@"; }

# One line per IKEv2 packet:
# frame_len|exchange|mid|dir|kind|ike_len|version|nonesp|payloads|dh|notifies
# payloads: unencrypted top-level payload types; dh: KE transform IDs in
# the SA; notifies: TYPE:DATALEN:HEX each.
# shellcheck disable=SC2016
JQ='def arr: if type == "array" then . elif . == null then [] else [.] end;
def hex2num: ltrimstr("0x") | ascii_downcase | explode
	| reduce .[] as $c (0; . * 16 + (if $c >= 97 then $c - 87 else $c - 48 end));
{"34": "IKE_SA_INIT", "35": "IKE_AUTH", "36": "CREATE_CHILD_SA",
 "37": "INFORMATIONAL"} as $ex
| .[] | ._source.layers as $l | ($l.isakmp | arr[]) as $i
| [ $l.frame["frame.len"],
    ($ex[$i["isakmp.exchangetype"]] // ("x" + $i["isakmp.exchangetype"])),
    ($i["isakmp.messageid"] | hex2num | tostring),
    (if $i["isakmp.flags_tree"]["isakmp.flag_i"] == "1" then "I->R" else "R->I" end),
    (if $i["isakmp.flags_tree"]["isakmp.flag_r"] == "1" then "resp" else "req" end),
    $i["isakmp.length"], $i["isakmp.version"],
    (if ($l.udpencap // {}) | has("udpencap.non_esp_marker") then "marker" else "-" end),
    ([$i["isakmp.typepayload"] | arr[]] | join(" ")),
    ([$i | .. | objects | select(.["isakmp.tf.type"]? == "4")
      | .["isakmp.tf.id.dh"]] | unique | join(" ")),
    ([$i["isakmp.typepayload_tree"] | arr[] | select(has("isakmp.notify.msgtype"))
      | (.["isakmp.notify.data"] // "") as $d
      | .["isakmp.notify.msgtype"] + ":"
        + (if $d == "" then 0 else ($d | length + 1) / 3 end | tostring)
        + ":" + ($d | gsub(":"; ""))] | join(" "))
  ] | join("|")'

# malformed FILE.pcap OUT: tshark -V and -z expert of the capture into OUT;
# prints the lines that make it fail (none: clean).
malformed() {
	ts -r "$1" -V -z expert >"$2" 2>&1
	grep -nE '[Mm]alformed|MALFORMED|Expert Info \((Error|Warning)/|^(Errors|Warnings) \([0-9]+\)|Dissector bug|[Ee]xception occurred|Unreassembled|BoundsError' "$2"
}

n3_start() {	# MODE PROFILE [args]
	m=$1; p=$2; shift 2
	rm -f "$TB/n3.ready"
	"$N3" --mode "$m" --profile "$p" --listen "127.0.0.1:$P" --natt-port "$Q" \
		--ready-file "$TB/n3.ready" --psk test-psk-1 --max-conns 1 \
		--cert "$SAE_A_CERT" --key "$SAE_A_KEY" --ca "$CA" \
		--kmsd-url "$KMSD_A_URL" --kmsd-cert "$SAE_A_CERT" \
		--kmsd-key "$SAE_A_KEY" --kmsd-ca "$CA" --peer-sae sae-b \
		--csv "$TB/n3.csv" "$@" 2>"$TB/n3.log" &
	N3PID=$!
	i=0
	while [ ! -s "$TB/n3.ready" ] && kill -0 "$N3PID" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.05; i=$((i + 1)); done
	[ -s "$TB/n3.ready" ]
}
ue_run() {	# MODE PROFILE [args]
	m=$1; p=$2; shift 2
	timeout 15 "$UE" --mode "$m" --profile "$p" --peer "127.0.0.1:$P" \
		--natt-port "$Q" --psk test-psk-1 --ca "$CA" \
		--cert "$SAE_B_CERT" --key "$SAE_B_KEY" \
		--kmsd-url "$KMSD_B_URL" --kmsd-cert "$SAE_B_CERT" \
		--kmsd-key "$SAE_B_KEY" --kmsd-ca "$CA" --peer-sae sae-a \
		--csv "$TB/ue.csv" "$@" 2>"$TB/ue.log"
}
n3_wait() {
	i=0
	while kill -0 "$N3PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	kill -TERM "$N3PID" 2>/dev/null
	wait "$N3PID"
}
cap_start() {	# PCAP: dumpcap on lo, only our two ports, at most 15 s
	rm -f "$1" "$TB/dumpcap.err"
	dumpcap -q -P -i lo -f "udp port $P or udp port $Q" -a duration:15 \
		-w "$1" 2>"$TB/dumpcap.err" &
	DCPID=$!
	i=0
	while ! grep -q '^Capturing on' "$TB/dumpcap.err" 2>/dev/null && [ $i -lt 100 ]; do
		kill -0 "$DCPID" 2>/dev/null || break
		sleep 0.05; i=$((i + 1)); done
	sleep 0.1
	grep -q '^Capturing on' "$TB/dumpcap.err"
}
cap_stop() {
	sleep 0.2	# the last packets reach the ring buffer
	kill -INT "$DCPID" 2>/dev/null
	wait "$DCPID"
}
# csv_rows FILE: exchange,mid,dir,kind,ike_len,frame_len per message, sorted
csv_rows() {
	awk -F, 'NR > 1 && $1 != "role" {print $5 "," $6 "," $7 "," $8 "," $9 "," $10}' "$1" | sort
}
# field N of the first packet line matching EXCHANGE and KIND
pkt() { awk -F'|' -v e="$1" -v k="$2" '$2 == e && $5 == k {print; exit}' "$TB/pkts"; }
# the last packet line matching EXCHANGE and KIND
pktl() { awk -F'|' -v e="$1" -v k="$2" '$2 == e && $5 == k {l = $0} END {print l}' "$TB/pkts"; }
fld() { printf '%s' "$1" | cut -d'|' -f"$2"; }
has_word() { printf ' %s ' "$1" | grep -q " $2 "; }
# notify TYPE in a notifies field -> "LEN:HEX" (empty: absent)
notify() { printf '%s\n' "$1" | tr ' ' '\n' | awk -F: -v t="$2" '$1 == t {print $2 ":" $3; exit}'; }

first_pcap=
for c in $CASES; do
	mode=${c%%/*}; rest=${c#*/}; prof=${rest%%/*}
	natt=; extra=
	case $rest in */natt) natt=1; extra="--force-natt yes" ;; esac
	# qkd-prf: qkd mode with the prf QKD key schedule (KE 1026, 1 key ID)
	sched=paper; qke=1025; nids=13
	[ "$mode" = qkd-prf ] && { mode=qkd; sched=prf; qke=1026; nids=1; }
	t="$c"
	ninit=2
	case $mode in qkd|qkd+dh) ninit=4 ;; esac	# + the COOKIE round trip
	pcap=$TB/$(printf '%s' "$c" | tr '/+' '__').pcap
	rm -f "$TB"/*.csv
	if ! cap_start "$pcap"; then
		nok "$t: dumpcap did not start: $(tail -n 2 "$TB/dumpcap.err")"; continue
	fi
	if ! n3_start "$mode" "$prof" --qkd-schedule "$sched"; then
		cap_stop; nok "$t: N3IWF did not start: $(tail -n 2 "$TB/n3.log")"; continue
	fi
	# shellcheck disable=SC2086
	ue_run "$mode" "$prof" $extra --qkd-schedule "$sched"
	rc=$?
	n3_wait; n3rc=$?
	cap_stop
	check "$t: ike-ue exit code" 0 "$rc"
	check "$t: ike-n3iwf exit code" 0 "$n3rc"
	if grep -qiE 'sanitizer|runtime error' "$TB/ue.log" "$TB/n3.log"; then
		nok "$t: sanitizer report"; fi
	[ -n "$first_pcap" ] || first_pcap=$pcap

	ts -r "$pcap" -T json --no-duplicate-keys -J "frame udp udpencap isakmp" \
		>"$pcap.json" 2>"$pcap.err"
	jq -r "$JQ" "$pcap.json" >"$TB/pkts" 2>>"$pcap.err"
	cp "$TB/pkts" "$pcap.pkts"
	frames=$(tshark -r "$pcap" 2>/dev/null | wc -l)
	npk=$(wc -l <"$TB/pkts")
	check "$t: every captured frame is IKE ($frames frames)" "$frames" "$npk"
	check "$t: every packet IKEv2 2.0" "$npk" "$(awk -F'|' '$7 == "0x20"' "$TB/pkts" | wc -l)"
	if [ -n "$natt" ]; then
		# IKE_SA_INIT on the IKE port, the rest behind a non-ESP marker
		check "$t: non-ESP marker on all but IKE_SA_INIT" "$((frames - ninit))" \
			"$(awk -F'|' '$8 == "marker" && $2 != "IKE_SA_INIT"' "$TB/pkts" | wc -l)"
	else
		check "$t: no NAT-T (no non-ESP marker)" 0 "$(awk -F'|' '$8 == "marker"' "$TB/pkts" | wc -l)"
	fi

	# exchange types and packet counts
	got=$(for e in IKE_SA_INIT IKE_AUTH CREATE_CHILD_SA INFORMATIONAL; do
		printf '%s=%s ' "$e" "$(awk -F'|' -v e="$e" '$2 == e' "$TB/pkts" | wc -l)"; done)
	if [ "$prof" = nwu ]; then
		want="IKE_SA_INIT=$ninit IKE_AUTH=10 CREATE_CHILD_SA=2 INFORMATIONAL=2 "
	else
		want="IKE_SA_INIT=$ninit IKE_AUTH=2 CREATE_CHILD_SA=0 INFORMATIONAL=2 "
	fi
	check "$t: IKEv2 packets per exchange" "$want" "$got"
	check "$t: nothing but the four exchange types" 0 \
		"$(awk -F'|' '$2 ~ /^x/' "$TB/pkts" | wc -l)"
	check "$t: INFORMATIONAL is one request and its response" "req resp" \
		"$(awk -F'|' '$2 == "INFORMATIONAL" {print $5}' "$TB/pkts" | sort | tr '\n' ' ' | sed 's/ $//')"

	# the wire against both endpoints' CSV --csv-msgs rows
	wire=$(awk -F'|' '$2 != "INFORMATIONAL" {print $2 "," $3 "," $4 "," $5 "," $6 "," $1}' "$TB/pkts" | sort)
	# The N3IWF keeps no state for the COOKIE pair (that is its point).
	wire_n3=$(awk -F'|' -v skip=$((ninit - 2)) '$2 == "IKE_SA_INIT" && seen < skip {seen++; next}
		$2 != "INFORMATIONAL" {print $2 "," $3 "," $4 "," $5 "," $6 "," $1}' "$TB/pkts" | sort)
	for side in ue n3; do
		rows=$(csv_rows "$TB/$side.msgs.csv" 2>/dev/null)
		nrows=0; [ -n "$rows" ] && nrows=$(printf '%s\n' "$rows" | wc -l)
		extra=2; [ $side = n3 ] && extra=$ninit
		check "$t: captured IKEv2 packets = $side CSV rows + 2 (Delete)$([ $side = n3 ] && [ $ninit = 4 ] && echo ' + 2 (COOKIE pair)')" "$((nrows + extra))" "$npk"
		[ $side = n3 ] && wire=$wire_n3
		if [ -n "$rows" ] && [ "$rows" = "$wire" ]; then
			ok "$t: wire matches $side CSV (exchange, MID, dir, kind, IKE and frame length)"
		else
			nok "$t: wire and $side CSV differ: $(printf '%s\n' "$wire" >"$TB/w"; printf '%s\n' "$rows" >"$TB/r"; diff "$TB/w" "$TB/r" | grep '^[<>]' | head -n 4 | tr '\n' ' ')"
		fi
	done

	# malformed packets, expert info errors/warnings
	bad=$(malformed "$pcap" "$pcap.txt")
	if [ -z "$bad" ] && [ -s "$pcap.txt" ]; then ok "$t: no malformed packet, no expert error/warning"
	else nok "$t: tshark flags: $(printf '%s' "$bad" | head -n 6 | tr '\n' ' ')"; fi
	notes=$(grep -E '^(Notes|Chats) \([0-9]+\)' "$pcap.txt" | tr '\n' ' ')
	[ -n "$notes" ] && echo "# $t: tshark expert info: $notes"

	# names tshark gives to the numbers we send
	names=$(grep -oE '(Notify Message Type|Transform ID \([A-Za-z-]+\)): .* \([0-9]+\)$' "$pcap.txt" |
		sed -E 's/^[^:]*: (.*) \(([0-9]+)\)$/\2 \1/' | sort -u)
	badname=$(printf '%s\n' "$names" | awk '
		$1 == 1025 || $1 == 1026 || ($1 >= 51000 && $1 <= 51002) {
			if ($0 !~ / (Private Use|Unknown|RESERVED|Reserved)/) print; next }
		$1 >= 16435 && $1 <= 16437 { next }	# RFC 8784: tshark 4.0 says RESERVED TO IANA
		/ (Private Use|Unknown|RESERVED|Reserved|Unassigned)/ { print }' | tr '\n' ';')
	if [ -n "$names" ] && [ -z "$badname" ]; then
		ok "$t: private numbers named private/unknown, all others registered"
	else
		nok "$t: tshark names: $badname"
	fi

	# IKE_SA_INIT contents
	rq=$(pktl IKE_SA_INIT req); rs=$(pktl IKE_SA_INIT resp)
	if [ $ninit = 4 ]; then
		c1=$(pkt IKE_SA_INIT resp)
		ck=$(notify "$(fld "$c1" 11)" 16390)
		check "$t: first IKE_SA_INIT response: only a COOKIE (41) of 32 bytes" "41 32" "$(fld "$c1" 9) ${ck%%:*}"
		check "$t: second IKE_SA_INIT request returns that COOKIE" "$ck" "$(notify "$(fld "$rq" 11)" 16390)"
	fi
	for x in request response; do
		l=$rq; [ "$x" = response ] && l=$rs
		pl=$(fld "$l" 9); nt=$(fld "$l" 11)
		if has_word "$pl" 33 && has_word "$pl" 40 && [ -n "$(notify "$nt" 16388)" ] &&
			[ -n "$(notify "$nt" 16389)" ]; then ok "$t: IKE_SA_INIT $x: SA, Nonce, NAT-D x2"
		else nok "$t: IKE_SA_INIT $x: payloads [$pl] notifies [$(printf '%s' "$nt" | sed -E 's/:[0-9a-f]{16,}//g')]"; fi
		if [ "$mode" = qkd ]; then
			if has_word "$pl" 34; then nok "$t: IKE_SA_INIT $x has a KE payload"
			else ok "$t: IKE_SA_INIT $x has no KE payload"; fi
			check "$t: IKE_SA_INIT $x KE transform" "$qke" "$(fld "$l" 10)"
		else
			if has_word "$pl" 34; then ok "$t: IKE_SA_INIT $x has a KE payload"
			else nok "$t: IKE_SA_INIT $x has no KE payload: [$pl]"; fi
			check "$t: IKE_SA_INIT $x KE transform" 14 "$(fld "$l" 10)"
			check "$t: IKE_SA_INIT $x without QKD_KEY_IDS" "" "$(notify "$nt" 51000 | cut -d: -f1)"
		fi
		[ "$mode" = qkd+dh ] && check "$t: IKE_SA_INIT $x USE_PPK (16435), no data" "0:" "$(notify "$nt" 16435)"
	done
	if [ "$mode" = qkd ]; then
		k=$(notify "$(fld "$rs" 11)" 51000)
		check "$t: IKE_SA_INIT response QKD_KEY_IDS (51000) data length" $((1 + 16 * nids)) "${k%%:*}"
		check "$t: QKD_KEY_IDS count byte" "$(printf %02x $nids)" "$(printf '%s' "${k#*:}" | cut -c1-2)"
		check "$t: QKD_KEY_IDS $((1 + 16 * nids)) bytes of hex" $((2 + 32 * nids)) "$(printf '%s' "${k#*:}" | tr -d '\n' | wc -c)"
		r=$(notify "$(fld "$rq" 11)" 51001)
		check "$t: IKE_SA_INIT request QKD_REQUEST (51001) = sae-b" "5:$(printf sae-b | od -An -tx1 | tr -d ' \n')" "$r"
	fi
done

# Self-check: the malformed check flags a broken packet. The first
# capture's IKE_SA_INIT request is rebuilt into a pcap of its own
# (text2pcap) as is, which must pass, and with its first payload's length
# (bytes 30-31 of the IKE message) set to 0xffff, which must be flagged.
if [ -n "$first_pcap" ]; then
	hex=$(ts -r "$first_pcap" -T fields -e udp.payload \
		-Y 'isakmp.exchangetype == 34 && isakmp.flags == 0x08' 2>/dev/null | head -n 1)
	mkpcap() {	# HEX FILE
		printf '000000 %s\n' "$(printf '%s' "$1" | sed 's/../& /g')" |
			text2pcap -q -u "$P,$P" - "$2" >/dev/null 2>&1
	}
	mkpcap "$hex" "$TB/intact.pcap"
	mkpcap "$(printf '%s' "$hex" | cut -c1-60)ffff$(printf '%s' "$hex" | cut -c65-)" "$TB/corrupt.pcap"
	if [ ${#hex} -gt 64 ] && [ -z "$(malformed "$TB/intact.pcap" "$TB/intact.txt")" ] &&
		grep -q 'IKE_SA_INIT' "$TB/intact.txt"; then
		ok "self-check: the IKE_SA_INIT request alone decodes clean"
	else
		nok "self-check: cannot rebuild the IKE_SA_INIT request [${#hex} hex digits]"
	fi
	if [ -n "$(malformed "$TB/corrupt.pcap" "$TB/corrupt.txt")" ]; then
		ok "self-check: a corrupted IKE_SA_INIT is flagged as malformed"
	else
		nok "self-check: a corrupted IKE_SA_INIT is NOT flagged: the malformed check is blind"
	fi
fi
el=$(( $(date +%s) - t0 ))
echo "# tshark: all runs in $el s"
exit 0
