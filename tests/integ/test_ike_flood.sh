#!/bin/sh
# Strangers cannot burn QKD keys through the N3IWF (issue 8 part 3). The
# N3IWF (qkd mode, default budgets) is flooded with thousands of fresh
# IKE_SA_INITs from several source sockets, silent ones and ones that answer
# COOKIEs, while a legitimate ike-ue connects in the middle. Keys are
# counted at the key server (kmsd A's /metrics), not by the N3IWF. Then the
# per-SAE and the global budgets alone, and the event loop while an
# enc_keys call hangs (kmsd A stopped): other peers are answered,
# retransmissions of the waiting IKE_SA_INIT draw no second set of keys;
# an IKE SA that expires during the call gets its keys wiped; and both
# in qkd+dh mode for the PPK's dec_keys, with the UE's IKE_AUTH parked.
# Flood sockets bind 127.0.0.2..13 (loopback) so that "per source address"
# means something; every datagram goes to the N3IWF on 127.0.0.1.
. "$(dirname "$0")/lib.sh"
tb_up

N3=$BINDIR/ike-n3iwf
UE=$BINDIR/ike-ue
FLOOD="python3 $top/tests/tools/ike_flood.py"
if ! command -v python3 >/dev/null 2>&1; then
	nok "python3 is missing (mk/deps.sh installs it)"
	exit 1
fi
ENC='kmsd_keys_served_total{endpoint="enc_keys"}'
DEC='kmsd_keys_served_total{endpoint="dec_keys"}'
served() {	# [metric]: keys kmsd A served (enc_keys)
	curl -s "$KMSD_A_OPS/metrics" | awk -v m="${1:-$ENC}" '$1 == m { print $2 + 0; f = 1; exit } END { if (!f) print 0 }'
}
n3_start() {	# [args]
	rm -f "$TB/n3.ready"
	"$N3" --mode "${MODE:-qkd}" --profile nwu --listen 127.0.0.1:0 --natt-port 0 \
		--ready-file "$TB/n3.ready" \
		--cert "$SAE_A_CERT" --key "$SAE_A_KEY" --ca "$CA" \
		--kmsd-url "$KMSD_A_URL" --kmsd-cert "$SAE_A_CERT" \
		--kmsd-key "$SAE_A_KEY" --kmsd-ca "$CA" "$@" 2>"$TB/n3.log" &
	N3PID=$!
	i=0
	while [ ! -s "$TB/n3.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	N3PORT=$(sed -n 's/^port=//p' "$TB/n3.ready")
}
n3_stop() {
	kill -TERM "$N3PID" 2>/dev/null
	i=0
	while kill -0 "$N3PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	kill -KILL "$N3PID" 2>/dev/null
	wait "$N3PID"; n3rc=$?
	if grep -qiE 'sanitizer|runtime error|leak' "$TB/n3.log"; then
		nok "N3IWF: sanitizer report: $(grep -iE 'sanitizer|runtime error|leak' "$TB/n3.log" | head -n 3)"
	fi
	return $n3rc
}
ue_run() {	# LOG [args]
	log=$1; shift
	timeout 30 "$UE" --mode "${MODE:-qkd}" --profile nwu --peer "127.0.0.1:$N3PORT" \
		--ca "$CA" --kmsd-url "$KMSD_B_URL" --kmsd-cert "$SAE_B_CERT" \
		--kmsd-key "$SAE_B_KEY" --kmsd-ca "$CA" --peer-sae sae-a \
		--log-level debug "$@" 2>"$log"
}
field() { printf '%s' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
stat() { grep 'stats:' "$TB/n3.log" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$1=//p"; }
src() { seq -s, -f "127.0.0.%g" "$1" "$2"; }
stall_run() {	# LOG WHAT: kmsd A stopped under a UE's call; 100 other
		# peers' IKE_SA_INITs answered meanwhile; the UE gets through
	kill -STOP "$KPID"
	ue_run "$1" --retransmit-ms 100 --retransmit-tries 8 &
	UEPID=$!
	sleep 0.5
	t0=$(date +%s%N)
	f=$($FLOOD --target "127.0.0.1:$N3PORT" --sources "$(src 2 3)" --count 100 --drain 0.5)
	t1=$(date +%s%N)
	kill -0 "$UEPID" 2>/dev/null && ok "$2: the UE is still waiting" ||
		nok "$2: the UE finished before kmsd A came back: $(tail -n 2 "$1")"
	kill -CONT "$KPID"
	wait "$UEPID"; rc=$?
	echo "# $2: $f ($(( (t1 - t0) / 1000000 )) ms)"
	check "$2: other peers still answered (100 COOKIEs)" 100 "$(field cookies "$f")"
	check "$2: the waiting UE got through afterwards" 0 "$rc"
}
expire_run() {	# LOG WIPED: a UE gives up (rc) while kmsd A is stopped under
		# its call; then the N3IWF logs WIPED and its stats
	kill -STOP "$KPID"
	ue_run "$1" --retransmit-ms 200 --retransmit-tries 2; rc=$?
	sleep 1.5
	kill -CONT "$KPID"
	i=0
	while ! grep -q "$2" "$TB/n3.log" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	kill -USR1 "$N3PID"; sleep 0.3
}

# 1. Default budgets (per source 65:1.3, per SAE 650:16, total 1300:16).
n3_start
[ -n "$N3PORT" ] && ok "N3IWF up (qkd, default budgets)" || nok "N3IWF did not start: $(cat "$TB/n3.log")"
k0=$(served); t0=$(date +%s)
$FLOOD --target "127.0.0.1:$N3PORT" --sources "$(src 2 9)" --count 2000 \
	--sae sae-b --drain 1 >"$TB/silent.out" 2>&1 &
F1=$!
$FLOOD --target "127.0.0.1:$N3PORT" --sources "$(src 10 13)" --count 1000 \
	--cookies --sae sae-x --drain 2 >"$TB/cookie-x.out" 2>&1 &
F2=$!
$FLOOD --target "127.0.0.1:$N3PORT" --sources "$(src 10 13)" --count 1000 \
	--cookies --sae random --drain 2 >"$TB/cookie-r.out" 2>&1 &
F3=$!
sleep 0.3
ue_run "$TB/ue.log" --retransmit-ms 200 --retransmit-tries 6; rc=$?
wait $F1 $F2 $F3
t1=$(date +%s)
k1=$(served)
kill -USR1 "$N3PID"; sleep 0.3
check "legitimate UE got through during the flood: exit 0" 0 "$rc"
check "... IKE SA established" 1 "$(grep -c 'IKE SA established (qkd, nwu)' "$TB/ue.log")"
check_match "... after a COOKIE round trip" "asks for a COOKIE" "$(cat "$TB/ue.log")"
s=$(cat "$TB/silent.out"); x=$(cat "$TB/cookie-x.out"); r=$(cat "$TB/cookie-r.out")
echo "# silent: $s"; echo "# cookie, sae-x: $x"; echo "# cookie, random SAE: $r"
check "silent flood: 2000 sent" 2000 "$(field sent "$s")"
check "silent flood: no key IDs ever" 0 "$(field key_ids "$s")"
[ "$(field cookies "$s")" -ge 1800 ] && ok "silent flood: answered with COOKIEs ($(field cookies "$s"))" ||
	nok "silent flood: only $(field cookies "$s") COOKIEs for 2000 requests"
[ "$(field answered "$x")" -ge 900 ] && ok "cookie flood: COOKIEs returned ($(field answered "$x"))" ||
	nok "cookie flood: only $(field answered "$x") COOKIEs returned"
[ "$(field temporary_failure "$x")" -ge 500 ] && ok "cookie flood: over budget -> TEMPORARY_FAILURE ($(field temporary_failure "$x"))" ||
	nok "cookie flood: only $(field temporary_failure "$x") TEMPORARY_FAILUREs"
drawn=$((k1 - k0)); secs=$((t1 - t0 + 1))
# 4 cookie-answering sources x (65 + 1.3 keys/s), the UE's 13.
limit=$((4 * 65 + 4 * 13 * secs / 10 + 13))
echo "# kmsd A served $drawn enc_keys keys in ~$secs s (budget $limit)"
[ "$drawn" -le "$limit" ] && ok "keys drawn at kmsd A within the budget ($drawn <= $limit)" ||
	nok "keys drawn at kmsd A: $drawn > budget $limit"
[ "$drawn" -ge 13 ] && ok "the UE's 13 keys are among them" || nok "only $drawn keys drawn"
check "N3IWF's keys_drawn = kmsd A's count" "$drawn" "$(stat keys_drawn)"
[ "$(stat over_src)" -ge 500 ] && ok "per-source refusals counted ($(stat over_src))" ||
	nok "over_src = $(stat over_src)"
nl=$(grep -c 'QKD key budget (source address) spent' "$TB/n3.log")
[ "$nl" -ge 1 ] && [ "$nl" -le $((secs + 2)) ] && ok "refusals logged, at most one line a second ($nl lines)" ||
	nok "$nl refusal log lines in $secs s"
check "no key bytes in the log" 0 "$(grep -ciE 'key=|\"key\"' "$TB/n3.log")"
n3_stop
check "N3IWF stops with 0 after the flood" 0 "$?"

# 2. Per-SAE budget alone: two connections' worth for sae-b, no refill.
n3_start --qkd-budget-src off --qkd-budget-all off --qkd-budget-sae 26:0
k0=$(served)
f=$($FLOOD --target "127.0.0.1:$N3PORT" --sources "$(src 2 5)" --count 200 \
	--cookies --sae sae-b --drain 3)
ue_run "$TB/ue2.log" --retransmit-ms 200; rc=$?
drawn=$(($(served) - k0))
echo "# per-SAE: $f"
check "per-SAE budget: 2 connections' keys for sae-b" 26 "$drawn"
check "per-SAE budget: the flood got 2 sets of key IDs" 2 "$(field key_ids "$f")"
check "per-SAE budget: UE (sae-b) refused: exit 1" 1 "$rc"
check_match "per-SAE budget: UE names TEMPORARY_FAILURE" "refused IKE_SA_INIT: TEMPORARY_FAILURE" "$(cat "$TB/ue2.log")"
check_match "per-SAE budget: N3IWF logs which budget" "QKD key budget \(SAE ID\) spent: 13 keys for SAE sae-b" "$(cat "$TB/n3.log")"
n3_stop
check "per-SAE budget: N3IWF stops with 0" 0 "$?"

# 3. Global budget alone: 39 keys, no refill, identities and sources varied.
n3_start --qkd-budget-src off --qkd-budget-sae off --qkd-budget-all 39:0
k0=$(served)
$FLOOD --target "127.0.0.1:$N3PORT" --sources "$(src 2 9)" --count 400 \
	--cookies --sae sae-x --drain 3 >"$TB/g.out"
drawn=$(($(served) - k0))
check "global budget: 3 connections' keys in all" 39 "$drawn"
check "global budget: 3 sets of key IDs" 3 "$(field key_ids "$(cat "$TB/g.out")")"
kill -USR1 "$N3PID"; sleep 0.3
[ "$(stat over_all)" -ge 300 ] && ok "global refusals counted ($(stat over_all))" || nok "over_all = $(stat over_all)"
n3_stop
check "global budget: N3IWF stops with 0" 0 "$?"

# 4. The loop while enc_keys hangs: kmsd A stopped (SIGSTOP) under a UE's call.
n3_start --kmsd-workers 1 --kmsd-timeout-ms 15000
k0=$(served)
KPID=$(cat "$TB/kmsd-a.pid")
stall_run "$TB/ue4.log" "kmsd A stalled"
kill -USR1 "$N3PID"; sleep 0.3
[ "$(stat dup_absorbed)" -ge 1 ] && ok "retransmissions absorbed while enc_keys ran ($(stat dup_absorbed))" ||
	nok "dup_absorbed = $(stat dup_absorbed)"
check "one enc_keys for the UE despite retransmissions: 13 keys at kmsd A" 13 "$(($(served) - k0))"
n3_stop
check "kmsd A stalled: N3IWF stops with 0" 0 "$?"

# 5. The IKE SA expires while its enc_keys is in flight: when the keys come
# they find no SA and are wiped (under SAN=1: no use after free).
n3_start --kmsd-workers 1 --kmsd-timeout-ms 15000 --half-open-ms 300
k0=$(served)
expire_run "$TB/ue5.log" 'came after their IKE SA was gone'
check "SA expired during enc_keys: the UE gives up (exit 1)" 1 "$rc"
check_match "... the N3IWF wipes the late keys" "13 QKD keys for SAE sae-b came after their IKE SA was gone: wiped unused" "$(cat "$TB/n3.log")"
check "... counted: keys_wiped=13" 13 "$(stat keys_wiped)"
check "... drawn once at kmsd A" 13 "$(($(served) - k0))"
n3_stop
check "SA expired during enc_keys: N3IWF stops with 0" 0 "$?"

# 6. qkd+dh: the PPK's dec_keys (kmsd A, the N3IWF's) hangs while the UE's
# IKE_AUTH waits for it; other peers are answered, the IKE_AUTH
# retransmissions are absorbed, the PPK is fetched once and used.
MODE=qkd+dh
n3_start --kmsd-workers 1 --kmsd-timeout-ms 15000 --peer-sae sae-b
d0=$(served "$DEC")
stall_run "$TB/ue6.log" "qkd+dh, kmsd A stalled"
check "... with the PPK (UE)" 1 "$(grep -c 'IKE SA established (qkd+dh, nwu).*PPK used' "$TB/ue6.log")"
check "... with the PPK (N3IWF)" 1 "$(grep -c 'IKE SA established (qkd+dh, nwu).*PPK used' "$TB/n3.log")"
check_match "... the UE retransmitted its IKE_AUTH meanwhile" "retransmi.*IKE_AUTH|IKE_AUTH.*retransmi" "$(cat "$TB/ue6.log")"
kill -USR1 "$N3PID"; sleep 0.3
[ "$(stat dup_absorbed)" -ge 1 ] && ok "qkd+dh: IKE_AUTH retransmissions absorbed while dec_keys ran ($(stat dup_absorbed))" ||
	nok "qkd+dh: dup_absorbed = $(stat dup_absorbed)"
check "qkd+dh: the PPK fetched once at kmsd A (dec_keys)" 1 "$(($(served "$DEC") - d0))"
check "qkd+dh: ... and counted once by the N3IWF" 1 "$(stat keys_drawn)"
n3_stop
check "qkd+dh, kmsd A stalled: N3IWF stops with 0" 0 "$?"

# 7. qkd+dh: the IKE SA expires while its PPK's dec_keys is in flight: the
# PPK finds no SA and is wiped (under SAN=1: no use after free).
n3_start --kmsd-workers 1 --kmsd-timeout-ms 15000 --peer-sae sae-b --half-open-ms 300
d0=$(served "$DEC")
expire_run "$TB/ue7.log" 'came after its IKE SA was gone'
check "qkd+dh, SA expired during dec_keys: the UE gives up (exit 1)" 1 "$rc"
check_match "... the UE's IKE_AUTH went unanswered (retransmitted)" "retransmitting IKE_AUTH" "$(cat "$TB/ue7.log")"
check_match "... the N3IWF wipes the late PPK" "PPK .* for SAE sae-b came after its IKE SA was gone: wiped unused" "$(cat "$TB/n3.log")"
check "... counted: keys_wiped=1" 1 "$(stat keys_wiped)"
check "... fetched once at kmsd A" 1 "$(($(served "$DEC") - d0))"
n3_stop
check "qkd+dh, SA expired during dec_keys: N3IWF stops with 0" 0 "$?"
