#!/bin/sh
# bench/ike/run.sh through the delay relays (issue 11): NWU_RTT=10 and
# KMS_RTT=4 put build/tools/delayrelay between the UE and the N3IWF (UDP,
# IKE and NAT-T ports) and between each endpoint and its kmsd (TCP). Checked
# at the relays (their own counters: datagrams and TCP connections really
# went through them, none dropped), in the UE's CSV (every connection
# completed; psk INIT at least 1 NWu RTT, psk TOTAL at least 6; qkd INIT at
# least 2 NWu RTTs (COOKIE) + 2 KMS RTTs, qkd's own kmsd call at least 1
# KMS RTT) and in the per-message CSV (NAT detected through the relay: the
# UE's IKE_AUTH frames carry the 4-byte non-ESP marker, its IKE_SA_INIT
# does not).
. "$(dirname "$0")/lib.sh"
BUILD=${BUILD:-build}
[ -x "$top/$BUILD/tools/delayrelay" ] || { nok "ike-delay: delayrelay not built"; exit 1; }
O=$TB/out
rt=""
chrt -f 10 true 2>/dev/null && rt="chrt -f 10"
if ! NWU_RTT=10 KMS_RTT=4 MODES="psk qkd-paper" $rt sh "$top/bench/ike/run.sh" 4 "$O" >"$TB/run.txt" 2>&1; then
	nok "ike-delay: bench/ike/run.sh failed: $(tail -n 3 "$TB/run.txt")"
	exit 1
fi
check "ike-delay: run.sh reports no failed connection" "" "$(grep 'some connections failed' "$TB/run.txt")"
# relay.log: "== kms", then per variant "== nwu" + its counters; kms's last
nwu=$(grep -A1 '^== nwu' "$O/relay.log" | grep -c 'forward [1-9][0-9]* pkts .* back [1-9][0-9]* pkts .*udp drops 0$')
check "ike-delay: both NWu relays forwarded datagrams both ways, none dropped" 2 "$nwu"
check_match "ike-delay: the KMS relay carried TCP connections (2 kmsd per endpoint at least)" \
    'tcp connections ([2-9]|[1-9][0-9]+), udp drops 0$' "$(tail -n 1 "$O/relay.log")"
# m VARIANT FIELD: median of the UE's completed connections 1.. (ms)
m() {
	awk -F, -v v="$1" -v f="$2" '$1=="ue" && ($12=="-" ? $2 : $2 "-" $12)==v && $5==1 && $4>=1 {print $f}' "$O/ue.csv" |
	    sort -g | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : -1)}'
}
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? "yes" : "no (" a " < " b ")" }'; }
for v in psk qkd-paper; do
	check "ike-delay: $v: 4 connections completed" 4 \
	    "$(awk -F, -v v="$v" '$1=="ue" && ($12=="-" ? $2 : $2 "-" $12)==v && $5==1' "$O/ue.csv" | wc -l)"
done
check "ike-delay: psk INIT median >= 1 NWu RTT (10 ms)" yes "$(ge "$(m psk 6)" 10)"
check "ike-delay: psk TOTAL median >= 6 NWu RTTs (60 ms)" yes "$(ge "$(m psk 11)" 60)"
check "ike-delay: qkd INIT median >= 2 NWu + 2 KMS RTTs (28 ms)" yes "$(ge "$(m qkd-paper 6)" 28)"
check "ike-delay: qkd's kmsd call median >= 1 KMS RTT (4 ms)" yes "$(ge "$(m qkd-paper 7)" 4)"
# NAT-T through the relay: frame_len - ike_len = 42 + 4 after IKE_SA_INIT
natt() {
	awk -F, -v x="$1" '$1=="ue" && $2=="psk" && $4==1 && $5==x {print $10 - $9; exit}' "$O/ue.msgs.csv"
}
check "ike-delay: IKE_SA_INIT on the IKE port (no marker)" 42 "$(natt IKE_SA_INIT)"
check "ike-delay: IKE_AUTH on the NAT-T port after NAT detection (4-byte marker)" 46 "$(natt IKE_AUTH)"
