#!/bin/sh
# ike-n3iwf and ike-ue when things go wrong, each bounded in time: kmsd A
# down (QKD_UNAVAILABLE), kmsd B down, an unknown key-exchange transform and
# a mode mismatch (NO_PROPOSAL_CHOSEN), a QKD key schedule mismatch
# (NO_PROPOSAL_CHOSEN, no key drawn at kmsd A), key budgets charged 13 or
# 1 keys per connection by the schedule, a wrong PSK (AUTHENTICATION_FAILED),
# no N3IWF at all (retransmission, then a clear error), COOKIEs, SIGTERM.
. "$(dirname "$0")/lib.sh"
tb_up

N3_OPTS="--kmsd-timeout-ms 2000"
. "$(dirname "$0")/ike_lib.sh"
ue_run() {	# MODE PROFILE [args]
	m=$1; p=$2; shift 2
	timeout 30 "$UE" --mode "$m" --profile "$p" --peer "127.0.0.1:$N3PORT" \
		--log-level debug --psk test-psk-1 --ca "$CA" \
		--kmsd-url "$KMSD_B_URL" --kmsd-cert "$SAE_B_CERT" \
		--kmsd-key "$SAE_B_KEY" --kmsd-ca "$CA" --peer-sae sae-a \
		--kmsd-timeout-ms 2000 --retransmit-ms 100 --retransmit-tries 3 \
		"$@" 2>"$TB/ue.log"
}
n3_stop() {	# SIGTERM; the exit code
	kill -TERM "$N3PID" 2>/dev/null
	i=0
	while kill -0 "$N3PID" 2>/dev/null && [ $i -lt 60 ]; do sleep 0.05; i=$((i + 1)); done
	kill -KILL "$N3PID" 2>/dev/null
	wait "$N3PID"
}
now() { date +%s; }
# kmsd_down SIDE WHO SECONDS: kmsd SIDE stopped, a UE run (qkd, nwu) against
# a fresh N3IWF exits 1 within SECONDS.
kmsd_down() {
	sh "$top/tests/testbed.sh" stop "kmsd-$1" "$TB"
	n3_start qkd nwu
	t0=$(now)
	ue_run qkd nwu; rc=$?
	check "kmsd $2 down: UE exits 1" 1 "$rc"
	[ $(($(now) - t0)) -le "$3" ] && ok "kmsd $2 down: bounded" || nok "kmsd $2 down: took $(($(now) - t0)) s"
}

# kmsd A down: the N3IWF answers QKD_UNAVAILABLE and says why.
kmsd_down a A 10
check_match "kmsd A down: UE says why" "refused IKE_SA_INIT: QKD_UNAVAILABLE" "$(grep 'failed' "$TB/ue.log")"
check_match "kmsd A down: N3IWF logs why" "QKD keys for SAE sae-b unavailable: kmsd .*answering QKD_UNAVAILABLE" "$(cat "$TB/n3.log")"
n3_stop
check "kmsd A down: N3IWF stops on SIGTERM with 0" 0 "$?"
sh "$top/tests/testbed.sh" start kmsd-a "$TB"

# kmsd B down: the UE cannot fetch the keys; it says so.
kmsd_down b B 15
check_match "kmsd B down: UE says why" "failed: kmsd .*dec_keys" "$(grep 'failed' "$TB/ue.log")"
n3_stop >/dev/null
sh "$top/tests/testbed.sh" start kmsd-b "$TB"

# A key-exchange transform the N3IWF does not know.
n3_start psk rfc7296
ue_run psk rfc7296 --propose-ke 1999; rc=$?
check "unknown KE transform: UE exits 1" 1 "$rc"
check_match "unknown KE transform: NO_PROPOSAL_CHOSEN" "NO_PROPOSAL_CHOSEN" "$(grep failed "$TB/ue.log")"
# A UE in qkd mode (KE 1025) against a psk N3IWF.
ue_run qkd rfc7296; rc=$?
check "qkd UE vs psk N3IWF: UE exits 1" 1 "$rc"
check_match "qkd UE vs psk N3IWF: NO_PROPOSAL_CHOSEN" "NO_PROPOSAL_CHOSEN" "$(grep failed "$TB/ue.log")"
# A wrong PSK.
ue_run psk rfc7296 --psk wrong-psk; rc=$?
check "wrong PSK: UE exits 1" 1 "$rc"
check_match "wrong PSK: AUTHENTICATION_FAILED" "AUTHENTICATION_FAILED" "$(grep failed "$TB/ue.log")"
check_match "wrong PSK: N3IWF logs it" "refused \\(AUTHENTICATION_FAILED\\)" "$(cat "$TB/n3.log")"
n3_stop >/dev/null

# A QKD key schedule mismatch (UE prf = KE 1026, N3IWF paper = KE 1025, and
# the other way): NO_PROPOSAL_CHOSEN, both sides say which schedule, and
# kmsd A hands out no key (counted at its /metrics); then a matching UE
# draws exactly one key there (the positive control).
served_a() { curl -s --max-time 10 "$KMSD_A_OPS/metrics" |
	awk '$1 == "kmsd_keys_served_total{endpoint=\"enc_keys\"}" { print $2; f = 1 } END { if (!f) print "?" }'; }
for pair in "paper prf" "prf paper"; do
	n3s=${pair% *}; ues=${pair#* }
	t="schedule mismatch (UE $ues, N3IWF $n3s)"
	ke="1025 \\(QKD_ETSI014\\)"; [ "$ues" = prf ] && ke="1026 \\(QKD_ETSI014_PRF\\)"
	n3_start qkd nwu --qkd-schedule "$n3s"
	k0=$(served_a)
	ue_run qkd nwu --qkd-schedule "$ues"; rc=$?
	check "$t: UE exits 1" 1 "$rc"
	check_match "$t: UE names the notify and its schedule" \
		"refused IKE_SA_INIT: NO_PROPOSAL_CHOSEN \\(14\\) \\(we run the QKD key schedule $ues" "$(grep failed "$TB/ue.log")"
	check_match "$t: N3IWF names both schedules" \
		"QKD key schedule mismatch: the peer offers KE $ke, we run the $n3s schedule" "$(cat "$TB/n3.log")"
	check "$t: no key served by kmsd A" 0 "$(($(served_a) - k0))"
	ue_run qkd nwu --qkd-schedule "$n3s"; rc=$?
	check "$t: then a UE with the N3IWF's schedule connects" 0 "$rc"
	n=1; [ "$n3s" = paper ] && n=13
	check "$t: ... drawing $n key(s) at kmsd A" "$n" "$(($(served_a) - k0))"
	n3_stop >/dev/null
done

# The QKD key budgets count keys: a source budget of 13 keys (no refill)
# admits one paper connection (13 keys) and 13 prf connections (1 key
# each), then TEMPORARY_FAILURE; kmsd A serves exactly 13 keys either way.
for sc in "paper 1" "prf 13"; do
	sched=${sc% *}; n=${sc#* }
	t="budget of 13 keys, $sched schedule"
	n3_start qkd nwu --qkd-schedule "$sched" --qkd-budget-src 13:0
	k0=$(served_a)
	ue_run qkd nwu --qkd-schedule "$sched" --count $((n + 1)); rc=$?
	check "$t: UE exits 1 (the last connection refused)" 1 "$rc"
	check "$t: $n connection(s) established" "$n" "$(grep -c 'ike-ue info: IKE SA established' "$TB/ue.log")"
	check "$t: then TEMPORARY_FAILURE" 1 "$(grep -c 'refused IKE_SA_INIT: TEMPORARY_FAILURE' "$TB/ue.log")"
	check "$t: kmsd A served 13 keys" 13 "$(($(served_a) - k0))"
	n3_stop >/dev/null
done

# COOKIE on every IKE_SA_INIT (threshold 0), then the flow completes.
n3_start psk nwu --cookie-threshold 0
ue_run psk nwu; rc=$?
check "COOKIE: UE exits 0" 0 "$rc"
check_match "COOKIE: asked for" "asks for a COOKIE" "$(cat "$TB/ue.log")"
check "COOKIE: established" 1 "$(grep -c 'ike-ue info: IKE SA established' "$TB/ue.log")"
n3_stop >/dev/null

# No N3IWF: retransmissions (100, 200, 400 ms), then a clear error.
N3PORT=9
t0=$(now)
ue_run psk nwu; rc=$?
check "no N3IWF: UE exits 1" 1 "$rc"
check_match "no N3IWF: says so" "no IKE_SA_INIT response from the N3IWF after 3 sends" "$(grep failed "$TB/ue.log")"
check "no N3IWF: retransmitted twice" 2 "$(grep -c 'retransmitting IKE_SA_INIT' "$TB/ue.log")"
[ $(($(now) - t0)) -le 5 ] && ok "no N3IWF: bounded" || nok "no N3IWF: took $(($(now) - t0)) s"

# Bad flags name the value.
out=$("$UE" --mode dh 2>&1); rc=$?
check "bad mode: exit 2" 2 "$rc"
check_match "bad mode: names it" 'mode "dh" is not psk, cert, qkd or qkd\+dh' "$out"
"$UE" --help | grep -q -- '--count' && ok "--help lists --count" || nok "--help"
exit 0
