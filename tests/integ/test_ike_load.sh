#!/bin/sh
# ike-ue's load mode (--load) against ike-n3iwf's subscriber range
# (--subscribers), with the testbed's real kmsd pair. Each run is checked
# at points independent of the UE's own summary line:
#   - the N3IWF's log: N distinct SUPIs registered (its AMF emulator found
#     each in its range, keys derived from the same seed), N distinct IKE
#     SAs established, and how many it held at once (established minus
#     deleted, in log order; --load-hold bounds it);
#   - the N3IWF's counters (SIGUSR1) during the hold: sas = --load-hold;
#   - the N3IWF's CSV: N rows ok;
#   - kmsd A and kmsd B's /metrics: 13 x N keys served in qkd mode (N in
#     qkd+dh);
#   - the UE's CSV: as many ok rows as the summary line's established.
# Then the refusals: SUPIs past the N3IWF's range (Registration Reject),
# another seed (the USIM refuses the network), the N3IWF's Delete of held
# UEs (SIGTERM), and the config errors of the new settings.
. "$(dirname "$0")/lib.sh"
tb_up
N3_OPTS="--peer-sae sae-b --qkd-budget-src off --qkd-budget-sae off --qkd-budget-all off --cookie-threshold 100000"
. "$(dirname "$0")/ike_lib.sh"
N3PID=""
trap 'kill "$N3PID" 2>/dev/null; tb_cleanup' EXIT INT TERM
SEED=00112233445566778899aabbccddeeff0123456789abcdef
FIRST=208930000100000

ue_load() {	# MODE PROFILE [args]: ike-ue --load ..., exit code; summary in
		# $TB/sum. With ue_bg=1: in the background, uep = the PID of
		# timeout, which passes SIGTERM on to ike-ue.
	m=$1; p=$2; shift 2
	set -- timeout 120 "$UE" --mode "$m" --profile "$p" --peer "127.0.0.1:$N3PORT" \
		--psk test-psk-1 --ca "$CA" --cert "$SAE_B_CERT" --key "$SAE_B_KEY" \
		--kmsd-url "$KMSD_B_URL" --kmsd-cert "$SAE_B_CERT" \
		--kmsd-key "$SAE_B_KEY" --kmsd-ca "$CA" --peer-sae sae-a \
		--supi-first "$FIRST" --sub-seed "$SEED" --csv "$TB/ue.csv" "$@"
	if [ -n "${ue_bg:-}" ]; then
		"$@" >"$TB/sum" 2>"$TB/ue.log" &
		uep=$!
	else
		"$@" >"$TB/sum" 2>"$TB/ue.log"
	fi
}
sum() { sed -n "s/^load:.* $1=\([^ ]*\).*/\1/p" "$TB/sum"; }
n3_stop() { kill -TERM "$N3PID" 2>/dev/null; wait "$N3PID" 2>/dev/null; N3PID=""; }
metric() { curl -s --max-time 10 "$1/metrics" | awk -v m="$2" '$1 == m { print $2; f = 1 } END { if (!f) print 0 }'; }
served() { metric "$1" "kmsd_keys_served_total{endpoint=\"$2\"}"; }
# The most IKE SAs the N3IWF held at once, from its log in order.
n3_peak() {
	awk '/ike-n3iwf info: IKE SA established/ { n++; if (n > m) m = n }
	     /IKE SA deleted by the peer/ { n-- } END { print m + 0 }' "$TB/n3.log"
}
supis() { grep -o 'Registration Request from imsi-[0-9]*' "$TB/n3.log" | sort -u; }
sas() { grep -o 'IKE SA established ([^)]*) [0-9a-f]*_i [0-9a-f]*_r' "$1" | awk '{print $5, $6}' | sort -u | wc -l; }
no_san() {
	if grep -qiE 'sanitizer|runtime error' "$TB/ue.log" "$TB/n3.log"; then nok "$1: sanitizer report"; else ok "$1: no sanitizer report"; fi
}

# run_case NAME MODE PROFILE N KEYS_PER_UE HOLD [ue args]: N UEs against
# an N3IWF with N subscribers; KEYS_PER_UE: what each kmsd serves per UE
# (enc_keys at the master's site: A in qkd, B in qkd+dh).
run_case() {
	t=$1; m=$2; p=$3; n=$4; k=$5; h=$6; shift 6
	rm -f "$TB"/*.csv
	# shellcheck disable=SC2086
	n3_start "$m" "$p" --subscribers "$n" --supi-first "$FIRST" --sub-seed "$SEED" --csv "$TB/n3.csv" ${N3_X:-}
	[ -n "$N3PORT" ] || { nok "$t: N3IWF did not start: $(tail -n 2 "$TB/n3.log")"; return; }
	ea=$(served "$KMSD_A_OPS" enc_keys); da=$(served "$KMSD_A_OPS" dec_keys)
	eb=$(served "$KMSD_B_OPS" enc_keys); db=$(served "$KMSD_B_OPS" dec_keys)
	if [ "$h" -gt 0 ]; then
		ue_bg=1; ue_load "$m" "$p" --load "$n" --load-hold "$h" --hold 3 "$@"; ue_bg=
		# during the hold: the N3IWF's own count of IKE SAs
		i=0; while ! grep -q 'load: .* held, for' "$TB/ue.log" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
		sleep 0.5; kill -USR1 "$N3PID"; sleep 0.3
		check "$t: the N3IWF holds --load-hold IKE SAs (its counters)" "$h" \
			"$(grep -o 'stats: .* sas=[0-9]*' "$TB/n3.log" | tail -n 1 | sed 's/.*sas=//')"
		wait "$uep"; rc=$?
	else
		ue_load "$m" "$p" --load "$n" "$@"; rc=$?
	fi
	check "$t: ike-ue exit code" 0 "$rc"
	check "$t: summary: ues, established, failed" "$n $n 0" "$(sum ues) $(sum established) $(sum failed)"
	check "$t: UE CSV rows ok = summary's established" "$(sum established)" "$(grep -c "^ue,$m,$p,[0-9]*,1," "$TB/ue.csv")"
	check "$t: UE CSV: N distinct UE indexes" "$n" "$(awk -F, 'NR > 1 {print $4}' "$TB/ue.csv" | sort -u | wc -l)"
	if [ "$p" = nwu ]; then	# rfc7296: no EAP-5G, no AMF
		check "$t: N3IWF registered N distinct SUPIs" "$n" "$(supis | wc -l)"
		check "$t: the first and last SUPI of the range" "imsi-$FIRST imsi-$((FIRST + n - 1))" \
			"$(supis | sed -n '1s/.* //p;$s/.* //p' | tr '\n' ' ' | sed 's/ $//')"
	fi
	check "$t: N3IWF established N distinct IKE SAs" "$n" "$(sas "$TB/n3.log")"
	check "$t: N3IWF CSV rows ok" "$n" "$(grep -c "^n3iwf,$m,$p,[0-9]*,1," "$TB/n3.csv")"
	if [ "$h" -gt 0 ]; then
		check "$t: summary held_max = --load-hold" "$h" "$(sum held_max)"
		pk=$(n3_peak)
		if [ "$pk" -ge "$h" ] && [ "$pk" -le $((h + 16)) ]; then ok "$t: N3IWF peak $pk within --load-hold $h + set-ups in flight"
		else nok "$t: N3IWF peak $pk not within [$h, $((h + 16))]"; fi
	else
		check "$t: summary held_max = N" "$n" "$(sum held_max)"
	fi
	check "$t: every IKE SA deleted by the UEs (N3IWF log)" "$n" "$(grep -c 'IKE SA deleted by the peer' "$TB/n3.log")"
	sleep 0.3
	ea=$(( $(served "$KMSD_A_OPS" enc_keys) - ea )); da=$(( $(served "$KMSD_A_OPS" dec_keys) - da ))
	eb=$(( $(served "$KMSD_B_OPS" enc_keys) - eb )); db=$(( $(served "$KMSD_B_OPS" dec_keys) - db ))
	case $m in
	qkd) check "$t: keys at kmsd A (enc) and B (dec) = $k x N" "$((k * n)) 0 0 $((k * n))" "$ea $da $eb $db" ;;
	qkd+dh) check "$t: keys at kmsd B (enc) and A (dec) = N" "0 $n $n 0" "$ea $da $eb $db" ;;
	*) check "$t: no keys at either kmsd" "0 0 0 0" "$ea $da $eb $db" ;;
	esac
	no_san "$t"
	n3_stop
}

run_case "qkd/nwu 200" qkd nwu 200 13 50 --load-conc 16
run_case "psk/nwu 200" psk nwu 200 0 0 --load-conc 16 --load-rate 200
# 200 arrivals at 200/s: the first to the last IKE_SA_INIT takes 995 ms
el=$(sum elapsed_s)
if awk -v e="$el" 'BEGIN { exit !(e >= 0.9 && e < 30) }'; then ok "psk/nwu 200: --load-rate 200 paces 200 arrivals over ${el} s"
else nok "psk/nwu 200: elapsed_s [$el] with --load-rate 200"; fi
run_case "qkd/rfc7296 50" qkd rfc7296 50 13 0 --load-conc 8
N3_X="--qkd-schedule prf" run_case "qkd(prf)/nwu 50" qkd nwu 50 1 0 --load-conc 8 --qkd-schedule prf
run_case "qkd+dh/nwu 50" qkd+dh nwu 50 1 20 --load-conc 8
run_case "cert/nwu 50" cert nwu 50 0 0 --load-conc 8
run_case "psk/rfc7296 50" psk rfc7296 50 0 0 --load-conc 8

# ---- refusals ----

# SUPIs past the N3IWF's range: Registration Reject (#3 illegal UE), the
# UE counts them failed and exits 1.
rm -f "$TB"/*.csv
n3_start psk nwu --subscribers 10 --supi-first "$FIRST" --sub-seed "$SEED"
ue_load psk nwu --load 12 --load-conc 4 --sub-seed "$SEED"
check "range: ike-ue exits 1 when a UE fails" 1 "$?"
check "range: summary: 10 established, 2 failed" "12 10 2" "$(sum ues) $(sum established) $(sum failed)"
check "range: the N3IWF names both SUPIs outside its range" \
	"imsi-$((FIRST + 10)) imsi-$((FIRST + 11))" \
	"$(grep -o 'unknown subscriber imsi-[0-9]*' "$TB/n3.log" | sed 's/.* //' | sort -u | tr '\n' ' ' | sed 's/ $//')"
check "range: UE CSV rows: 10 ok, 2 failed" "10 2" \
	"$(grep -c '^ue,psk,nwu,[0-9]*,1,' "$TB/ue.csv") $(grep -c '^ue,psk,nwu,[0-9]*,0,' "$TB/ue.csv")"
check "range: N3IWF established 10 distinct IKE SAs" 10 "$(sas "$TB/n3.log")"
n3_stop

# Another seed: every USIM refuses the network's AUTN (MAC failure).
n3_start psk nwu --subscribers 3 --supi-first "$FIRST" --sub-seed "$SEED"
ue_load psk nwu --load 3 --sub-seed "ffeeddccbbaa99887766554433221100"
check "other seed: ike-ue exits 1" 1 "$?"
check "other seed: summary: 0 established, 3 failed" "0 3" "$(sum established) $(sum failed)"
check "other seed: 3 USIMs refuse the network" 3 "$(grep -c 'usim: AUTN MAC check failed' "$TB/ue.log")"
check "other seed: the N3IWF established none" 0 "$(grep -c 'ike-n3iwf info: IKE SA established' "$TB/n3.log")"
n3_stop

# The N3IWF deletes the held UEs (SIGTERM): each answers the Delete.
n3_start qkd nwu --subscribers 30 --supi-first "$FIRST" --sub-seed "$SEED"
ue_bg=1; ue_load qkd nwu --load 30 --load-conc 8 --sub-seed "$SEED" --hold 4; ue_bg=
i=0; while ! grep -q 'load: .* held, for' "$TB/ue.log" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
n3_stop
wait "$uep"
check "N3IWF Delete: ike-ue exit code (all were established)" 0 "$?"
check "N3IWF Delete: the N3IWF deletes 30" 1 "$(grep -c 'deleting 30 IKE SA(s)' "$TB/n3.log")"
check "N3IWF Delete: 30 held UEs deleted by the N3IWF" 30 "$(grep -c 'the N3IWF deleted its IKE SA' "$TB/ue.log")"
check "N3IWF Delete: no Delete of the UE's own left" "0" \
	"$(grep -c 'load: deleting [1-9]' "$TB/ue.log")"

# --hold 0: held until SIGTERM, then every UE deletes its IKE SA.
n3_start psk rfc7296 --subscribers 40 --supi-first "$FIRST" --sub-seed "$SEED"
ue_bg=1; ue_load psk rfc7296 --load 40 --load-conc 8 --hold 0; ue_bg=
i=0; while ! grep -q 'load: 40 UE(s) held, until SIGTERM' "$TB/ue.log" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
kill -USR1 "$N3PID"; sleep 0.3
check "SIGTERM: the N3IWF holds 40 before" 40 "$(grep -o 'stats: .* sas=[0-9]*' "$TB/n3.log" | tail -n 1 | sed 's/.*sas=//')"
kill -TERM "$uep"; wait "$uep"
check "SIGTERM: ike-ue exit code (all were established)" 0 "$?"
check "SIGTERM: summary: 40 established" "40 40" "$(sum ues) $(sum established)"
kill -USR1 "$N3PID"; sleep 0.3
check "SIGTERM: the N3IWF holds none after" 0 "$(grep -o 'stats: .* sas=[0-9]*' "$TB/n3.log" | tail -n 1 | sed 's/.*sas=//')"
check "SIGTERM: 40 deleted by the UEs (N3IWF log)" 40 "$(grep -c 'IKE SA deleted by the peer' "$TB/n3.log")"
n3_stop

# ---- config errors: exit 2, the bad value named, never the seed ----
cfg_err() {	# NAME EXPECTED-TEXT PROG args...
	n=$1; want=$2; prog=$3; shift 3
	out=$("$prog" "$@" 2>&1); rc=$?
	check "config: $n: exit 2" 2 "$rc"
	check_match "config: $n: message" "$want" "$out"
}
cfg_err "--load 5 without --sub-seed" "--sub-seed is required with --load 5" "$UE" --ca "$CA" --mode psk --load 5
cfg_err "--subscribers 5 without --sub-seed" "--sub-seed is required with --subscribers 5" \
	"$N3" --mode psk --cert "$SAE_A_CERT" --key "$SAE_A_KEY" --subscribers 5
cfg_err "a short seed" "sub_seed is not 32-64 hex digits" "$UE" --ca "$CA" --mode psk --load 5 --sub-seed 0011
BAD=00112233445566778899aabbccddeeffXX
out=$("$UE" --ca "$CA" --mode psk --load 5 --sub-seed "$BAD" 2>&1)
check_match "config: a seed with a non-hex digit" "sub_seed is not hex digits" "$out"
if printf '%s' "$out" | grep -q 00112233445566; then nok "config: the seed is in the message"; else ok "config: the seed is not in the message"; fi
cfg_err "supi_first not digits" 'supi_first "2089300001x0000" is not 6-15 IMSI digits' \
	"$UE" --ca "$CA" --mode psk --load 5 --sub-seed "$SEED" --supi-first 2089300001x0000
cfg_err "a range past 15 digits" '3 subscribers from supi_first "999999999999998" do not fit in 15 digits' \
	"$UE" --ca "$CA" --mode psk --load 3 --sub-seed "$SEED" --supi-first 999999999999998
cfg_err "a range across MNCs" '3 subscribers from supi_first "208939999999999" cross into another MCC/MNC' \
	"$N3" --mode psk --cert "$SAE_A_CERT" --key "$SAE_A_KEY" --subscribers 3 --sub-seed "$SEED" --supi-first 208939999999999
cfg_err "--tunnel with --load" "--tunnel is not supported with --load" \
	"$UE" --ca "$CA" --mode psk --load 5 --sub-seed "$SEED" --tunnel yes
cfg_err "--load-hold above --load" "--load-hold 9 is more than --load 5" \
	"$UE" --ca "$CA" --mode psk --load 5 --load-hold 9 --sub-seed "$SEED"
cfg_err "--load-rate not a number" 'load_rate "fast" is not a rate' "$UE" --ca "$CA" --mode psk --load-rate fast
cfg_err "--load-conc 0" "load.conc" "$UE" --ca "$CA" --mode psk --load-conc 0
printf '[ike]\nmode = psk\nca = %s\nload = 100\nload_rate = 12.5\nload_conc = 8\nload_hold = 10\nsub_seed = %s\nsupi_first = %s\n' \
	"$CA" "$SEED" "$FIRST" >"$TB/ue-load.conf"
"$UE" --check-config "$TB/ue-load.conf" >/dev/null 2>&1
check "config: --check-config of a load-mode file" 0 "$?"
printf '[ike]\nmode = psk\nca = %s\nload = 100\n' "$CA" >"$TB/ue-bad.conf"
out=$("$UE" --check-config "$TB/ue-bad.conf" 2>&1); rc=$?
check "config: --check-config without sub_seed: exit 2" 2 "$rc"
check_match "config: --check-config names the missing seed" "--sub-seed is required with --load 100" "$out"
