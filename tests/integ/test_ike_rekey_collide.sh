#!/bin/sh
# Rekey collisions made on purpose (RFC 7296 2.8.1: both sides rekey the
# same SA at once; the exchange holding the lowest of the four nonces made
# the redundant SA, which its initiator deletes), with the real ike-ue and
# ike-n3iwf over the tunnel testbed (tests/testbed.sh up --tunnel), qkd
# mode. The UE runs with the test hook IKE_TEST_REKEY_HOLD=ue:lose|win: a
# rekey it starts waits for the N3IWF's request and leaves just before the
# UE answers it, so both requests cross; and the UE picks the loser of
# each collision with an all-zero nonce, the lowest there is: in its own
# request (lose: the UE's new SA is redundant) or in its answer to the
# N3IWF's (win: the N3IWF's is). Both cases run. The operator's "rekey
# now" (SIGUSR2) goes to the UE, then to the N3IWF: the IKE SA is rekeyed
# by both at once, then each Child SA. Checks, for the IKE SA:
# - exactly one collision, both sides naming the same redundant and the
#   same surviving new IKE SA (SPIs), the loser the one the nonce chose;
#   the redundant one deleted by the side that made it (the other logs
#   the Delete), the old one deleted too;
# - one IKE SA left at both ends: the N3IWF's counters (SIGUSR1, sas=1) and
#   the UE's; the UE's final Delete names the survivor, and the N3IWF sees
#   it with the two Child SAs (they moved to the survivor);
# and for the Child SAs: a collision for each (2), the loser the one the
# nonce chose, the same redundant SA named on both sides; ping every
# 10 ms through the tunnel all along, 0 lost; at the key servers (kmsd
# /metrics): every exchange takes one fresh QKD key, so a collision costs
# 2 keys (one per crossing exchange) for the one SA that survives: 3
# collisions take 6 keys, kmsd A served 6 (enc_keys) and kmsd B 6
# (dec_keys), none drawn in vain.
# Needs root, ip, socat, python3, curl, ping.
. "$(dirname "$0")/lib.sh"
TBT=$(mktemp -d /tmp/qkd-collide.XXXXXX)
TB_SH=$top/tests/testbed.sh
PPID_PING=""
D=""
trap 'kill "$PPID_PING" 2>/dev/null; [ -z "$D" ] || sh "$TB_SH" down "$D" >/dev/null 2>&1; rm -rf "$TBT"; tb_cleanup' EXIT INT TERM

for b in ip socat python3 curl ping; do
	command -v "$b" >/dev/null 2>&1 || { nok "missing prerequisite: $b (mk/deps.sh)"; exit 1; }
done
[ "$(id -u)" = 0 ] || { nok "needs root (network namespaces)"; exit 1; }

metric() { curl -s --max-time 10 "$1/metrics" | awk -v m="$2" '$1 == m { print $2; f = 1 } END { if (!f) print "?" }'; }
served() { metric "$1" "kmsd_keys_served_total{endpoint=\"$2\"}"; }
rk() { sed -n "s/.*rekey counters:.*[ ]$1=\([0-9]*\).*/\1/p" "$2" | tail -n 1; }
# wait_grep PATTERN FILE COUNT: until FILE has COUNT lines matching (10 s).
wait_grep() {
	i=0
	while [ "$(grep -c "$1" "$2")" -lt "$3" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
}
inue() { ip netns exec "$UE_NETNS" "$@"; }

# collide CASE (lose|win): one testbed, one SIGUSR2 round, the checks.
collide() {
	t="qkd/nwu collision, the UE ${1}s"
	[ -z "${D:-}" ] || sh "$TB_SH" down "$D" >/dev/null 2>&1
	D=$TBT/$1; mkdir -p "$D"
	if ! IKE_TEST_REKEY_HOLD=ue:$1 LOG_LEVEL=debug sh "$TB_SH" up "$D" --tunnel --mode qkd >"$D/up.log" 2>&1; then
		nok "$t: testbed up --tunnel: $(tail -n 3 "$D/up.log")"
		tail -n 5 "$D/ike-ue.log" "$D/ike-n3iwf.log" | sed 's/^/# /'
		return
	fi
	. "$D/testbed.env"
	UEPID=$(cat "$D/ike-ue.pid"); N3PID=$(cat "$D/ike-n3iwf.pid")
	a0=$(served "$KMSD_A_OPS" enc_keys); b0=$(served "$KMSD_B_OPS" dec_keys)
	inue ping -i 0.01 -c 1000 -W 2 "$DN_ADDR" >"$D/ping.out" 2>&1 &
	PPID_PING=$!
	sleep 1
	# The UE first: it holds its request; then the N3IWF's crosses it.
	kill -USR2 "$UEPID"
	wait_grep 'rekey of the IKE SA held (test hook)' "$UE_LOG" 1
	check "$t: the UE holds its IKE SA rekey" 1 "$(grep -c 'rekey of the IKE SA held (test hook)' "$UE_LOG")"
	kill -USR2 "$N3PID"
	wait_grep 'rekey collision on a Child SA' "$N3IWF_LOG" 2
	wait_grep 'rekey collision on a Child SA' "$UE_LOG" 2
	sleep 1
	wait "$PPID_PING"; PPID_PING=""
	check "$t: ping every 10 ms through the tunnel, loss" 0 \
		"$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' "$D/ping.out")"
	check_match "$t: 1000 pings answered" '1000 received' "$(cat "$D/ping.out")"
	ike_checks "$t" "$1"
	child_checks "$t" "$1"
	key_checks "$t" "$a0" "$b0"
	end_checks "$t"
}

# The IKE SA: one collision, the same SAs named on both sides, the loser
# the one the nonce chose, its SA deleted by its maker, the old one too.
col() { sed -n 's/.*rekey collision on the IKE SA: \(our\|the peer.s\) new IKE SA \([0-9a-f]*_i [0-9a-f]*_r\) is redundant, \([0-9a-f]*_i [0-9a-f]*_r\) survives/\1|\2|\3/p' "$1"; }
ike_checks() {	# TITLE CASE
	cu=$(col "$UE_LOG"); cn=$(col "$N3IWF_LOG")
	check "$1: one IKE SA collision at the UE" 1 "$(printf '%s\n' "$cu" | grep -c .)"
	check "$1: one IKE SA collision at the N3IWF" 1 "$(printf '%s\n' "$cn" | grep -c .)"
	check "$1: both sides name the same redundant and surviving IKE SA" \
		"$(echo "$cu" | cut -d'|' -f2-)" "$(echo "$cn" | cut -d'|' -f2-)"
	if [ "$2" = lose ]; then want="our|the peer's"; other=$N3IWF_LOG; else want="the peer's|our"; other=$UE_LOG; fi
	check "$1: the UE's and the N3IWF's word on the redundant IKE SA" "$want" \
		"$(echo "$cu" | cut -d'|' -f1)|$(echo "$cn" | cut -d'|' -f1)"
	red=$(echo "$cu" | cut -d'|' -f2); surv=$(echo "$cu" | cut -d'|' -f3)
	check "$1: the redundant IKE SA deleted by the side that made it" 1 \
		"$(grep -c "IKE SA deleted by the peer: IKE SA $red," "$other")"
	old=$(sed -n 's/.*IKE SA rekeyed: \([0-9a-f]*\) -> .*/\1/p' "$UE_LOG" | sort -u)
	check "$1: both new IKE SAs replace the same old one" 1 "$(printf '%s\n' "$old" | grep -c .)"
	check "$1: the old IKE SA deleted" 1 \
		"$(cat "$UE_LOG" "$N3IWF_LOG" | grep -c "IKE SA deleted by the peer: IKE SA ${old}_i")"
	kill -USR1 "$N3PID"; sleep 0.3
	check_match "$1: one IKE SA left at the N3IWF" 'sas=1$' "$(grep 'stats: init' "$N3IWF_LOG" | tail -n 1)"
}

# The Child SAs: a collision each, the loser chosen, named alike.
red_ch() { sed -n 's/.*rekey collision on a Child SA: \(our\|the peer.s\) new Child SA \([0-9a-f/]*\) is redundant/\1 \2/p' "$1" | sort; }
child_checks() {	# TITLE CASE
	ru=$(red_ch "$UE_LOG"); rn=$(red_ch "$N3IWF_LOG")
	check "$1: a collision on each of the 2 Child SAs" 2 "$(printf '%s\n' "$ru" | grep -c .)"
	[ "$2" = lose ] && w=our || w="the peer's"
	check "$1: the UE's word on both redundant Child SAs" "$w
$w" "$(printf '%s\n' "$ru" | sed 's/ [0-9a-f/]*$//')"
	check "$1: the same redundant Child SAs on both sides" \
		"$(printf '%s\n' "$ru" | sed 's/.* //' | sort)" "$(printf '%s\n' "$rn" | sed 's/.* //' | sort)"
}

# Keys at the key servers: one per exchange, two per collision.
key_checks() {	# TITLE A0 B0
	used=$(grep -c 'rekey: fresh QKD key' "$UE_LOG")
	da=$(($(served "$KMSD_A_OPS" enc_keys) - $2)); db=$(($(served "$KMSD_B_OPS" dec_keys) - $3))
	ch=$(grep -c 'Child SA rekeyed' "$UE_LOG"); ik=$(grep -c 'IKE SA rekeyed' "$UE_LOG")
	check "$1: one fresh QKD key per rekey exchange (UE)" "$((ch + ik))" "$used"
	check "$1: 3 collisions cost 6 keys (2 each)" 6 "$used"
	check "$1: kmsd B dec_keys served them" 6 "$db"
	check "$1: kmsd A enc_keys served them (none drawn in vain)" 6 "$da"
}

# The end: the UE deletes the survivor, with the two Child SAs on it.
end_checks() {	# TITLE
	kill -TERM "$UEPID"
	i=0; while kill -0 "$UEPID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	check "$1: one IKE SA held at the UE at the end" 1 \
		"$(sed -n 's/.* \([0-9]*\) IKE SA(s) held at the end/\1/p' "$UE_LOG" | tail -n 1)"
	check_match "$1: the UE deletes the surviving IKE SA, 2 Child SAs on it" \
		"deleting the IKE SA: IKE SA $surv, 2 Child SA" "$(grep 'deleting the IKE SA:' "$UE_LOG")"
	u=$(sed -n 's/.*deleting the IKE SA: .* in use:\([^;]*\);.*/\1/p' "$UE_LOG" | tail -n 1)
	check "$1: the N3IWF sees the same Delete with the same Child SAs" "IKE SA $surv, 2 Child SA(s) in use:$u" \
		"$(sed -n 's/.*IKE SA deleted by the peer: \(.* in use:[^;]*\);.*/\1/p' "$N3IWF_LOG" | tail -n 1)"
	if grep -qiE 'sanitizer|runtime error' "$UE_LOG" "$N3IWF_LOG"; then nok "$1: sanitizer report"; fi
}

collide lose
collide win
