#!/bin/sh
# One ike-n3iwf holding thousands of UEs (issue 12, "per-UE state small and
# bounded, timers that scale"): ike-ue's load mode brings N UEs up and holds
# them (--hold 0: until SIGTERM); while they are held the test reads, apart
# from the UE's own summary:
#   - the N3IWF's own table (SIGUSR1 counters): sas=N, half_open=0, and N
#     distinct IKE SAs established in its log;
#   - kmsd A and kmsd B's /metrics: 13 x N keys served (qkd), N (qkd+dh);
#   - the N3IWF's memory: VmRSS growth from before the first UE to N held,
#     per UE, below 16 KiB (ike/README.md, "Scale": the breakdown);
#   - the N3IWF's CPU with N held and nothing happening: utime + stime in
#     /proc/PID/stat over 3 s, at most 3 ticks (1%): no pass over the
#     table per loop or per second;
# then the UEs leave (SIGTERM to ike-ue: each deletes its IKE SA) and the
# table is empty again (sas=0), its inner addresses free for the next run.
# Last, max_ike_sas: past it a new IKE_SA_INIT is dropped (logged once a
# second) and the UE retransmits until it fails; the ones in are served.
# 26,000 QKD keys within seconds: the emulated link must make them faster
# than the UEs take them (its default, 1 Mbit/s, is 3,900 keys/s, and on a
# quiet machine 2,000 qkd UEs outran it: QKD_UNAVAILABLE, as it should be)
export KEY_RATE=${KEY_RATE:-400000000}
. "$(dirname "$0")/lib.sh"
tb_up
N3_OPTS="--peer-sae sae-b --qkd-budget-src off --qkd-budget-sae off --qkd-budget-all off --cookie-threshold 1000000 --log-level info"
. "$(dirname "$0")/ike_lib.sh"
N3PID=""; UEP=""
trap 'kill "$UEP" "$N3PID" 2>/dev/null; tb_cleanup' EXIT INT TERM
SEED=00112233445566778899aabbccddeeff0123456789abcdef
FIRST=208930000200000
MAXB=16384	# bytes of RSS per established UE, at most
# An ASan build pads every allocation and keeps freed memory in a
# quarantine (256 MiB by default, which RSS then shows): there the
# quarantine is cut to 4 MiB and the bound is 4x (it still catches state
# that grows without bound).
if grep -q __asan_init "$N3" 2>/dev/null; then
	MAXB=65536
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4"
fi

metric() { curl -s --max-time 10 "$1/metrics" | awk -v m="$2" '$1 == m { print $2; f = 1 } END { if (!f) print 0 }'; }
served() { metric "$1" "kmsd_keys_served_total{endpoint=\"$2\"}"; }
rss() { awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status"; }
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }	# ticks
# the N3IWF's counters now (SIGUSR1), field $1 of its last stats line
n3_stat() {
	kill -USR1 "$N3PID"; sleep 0.5
	grep -o "stats: .* $1=[0-9]*" "$TB/n3.log" | tail -n 1 | sed "s/.*$1=//"
}
sas() { grep -o 'IKE SA established ([^)]*) [0-9a-f]*_i [0-9a-f]*_r' "$TB/n3.log" | awk '{print $5, $6}' | sort -u | wc -l; }
sum() { sed -n "s/^load:.* $1=\([^ ]*\).*/\1/p" "$TB/sum"; }

# hold_case NAME MODE PROFILE N "KEYS" [ue args]: N UEs held; KEYS: what
# kmsd A serves (enc_keys, dec_keys), then kmsd B, over the run.
hold_case() {
	t=$1; m=$2; p=$3; n=$4; keys=$5; shift 5
	n3_start "$m" "$p" --subscribers "$n" --supi-first "$FIRST" --sub-seed "$SEED"
	[ -n "$N3PORT" ] || { nok "$t: N3IWF did not start: $(tail -n 2 "$TB/n3.log")"; return; }
	sleep 0.5
	r0=$(rss "$N3PID")
	ea=$(served "$KMSD_A_OPS" enc_keys); db=$(served "$KMSD_B_OPS" dec_keys)
	eb=$(served "$KMSD_B_OPS" enc_keys); da=$(served "$KMSD_A_OPS" dec_keys)
	"$UE" --mode "$m" --profile "$p" --peer "127.0.0.1:$N3PORT" \
		--psk test-psk-1 --ca "$CA" --cert "$SAE_B_CERT" --key "$SAE_B_KEY" \
		--kmsd-url "$KMSD_B_URL" --kmsd-cert "$SAE_B_CERT" \
		--kmsd-key "$SAE_B_KEY" --kmsd-ca "$CA" --peer-sae sae-a \
		--supi-first "$FIRST" --sub-seed "$SEED" --load "$n" --hold 0 \
		"$@" >"$TB/sum" 2>"$TB/ue.log" &
	UEP=$!
	i=0; while ! grep -q 'load: [0-9]* UE(s) held' "$TB/ue.log" 2>/dev/null && [ $i -lt 2400 ] && kill -0 "$UEP" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
	# the N3IWF ends each set-up last (the UE answers its CREATE_CHILD_SA)
	i=0; while [ "$(sas)" -lt "$n" ] && [ $i -lt 300 ]; do sleep 0.2; i=$((i + 1)); done
	sleep 1
	check "$t: the N3IWF's table holds N IKE SAs (sas=)" "$n" "$(n3_stat sas)"
	check "$t: none half-open" 0 "$(n3_stat half_open)"
	check "$t: N3IWF log: N distinct IKE SAs established" "$n" "$(sas)"
	r1=$(rss "$N3PID")
	per=$(( (r1 - r0) / n ))
	if [ "$per" -gt 0 ] && [ "$per" -lt "$MAXB" ]; then ok "$t: RSS growth per UE $per bytes < $MAXB ($r0 -> $r1)"
	else nok "$t: RSS growth per UE $per bytes, not in (0, $MAXB) ($r0 -> $r1)"; fi
	echo "# $t: rss_per_ue=$per"
	c0=$(cpu "$N3PID"); sleep 3; c1=$(cpu "$N3PID")
	if [ $((c1 - c0)) -le 3 ]; then ok "$t: idle CPU with N held: $((c1 - c0)) ticks in 3 s"
	else nok "$t: idle CPU with N held: $((c1 - c0)) ticks in 3 s (> 3)"; fi
	ea=$(( $(served "$KMSD_A_OPS" enc_keys) - ea )); db=$(( $(served "$KMSD_B_OPS" dec_keys) - db ))
	eb=$(( $(served "$KMSD_B_OPS" enc_keys) - eb )); da=$(( $(served "$KMSD_A_OPS" dec_keys) - da ))
	check "$t: keys at kmsd A (enc, dec), kmsd B (enc, dec)" "$keys" "$ea $da $eb $db"
	kill -TERM "$UEP"; wait "$UEP"
	UEP=""
	check "$t: ike-ue: every UE established" "$n $n 0" "$(sum ues) $(sum established) $(sum failed)"
	i=0; while [ "$(n3_stat sas)" != 0 ] && [ $i -lt 10 ]; do i=$((i + 1)); done
	check "$t: the UEs deleted: the N3IWF's table is empty" 0 "$(n3_stat sas)"
	check "$t: every IKE SA deleted by its UE (N3IWF log)" "$n" "$(grep -c 'IKE SA deleted by the peer' "$TB/n3.log")"
	if grep -qiE 'sanitizer|runtime error' "$TB/ue.log" "$TB/n3.log"; then nok "$t: sanitizer report"; else ok "$t: no sanitizer report"; fi
	kill -TERM "$N3PID"; wait "$N3PID"; N3PID=""
}

# qkd: 13 keys per UE drawn at A, fetched at B; qkd+dh: the PPK drawn by
# the UE at B, fetched by the N3IWF at A
hold_case "qkd/nwu 2000" qkd nwu 2000 "26000 0 0 26000" --load-conc 32
hold_case "psk/nwu 2000" psk nwu 2000 "0 0 0 0" --load-conc 32
hold_case "cert/nwu 500" cert nwu 500 "0 0 0 0" --load-conc 16
hold_case "qkd+dh/nwu 500" qkd+dh nwu 500 "0 500 500 0" --load-conc 16
hold_case "psk/rfc7296 500" psk rfc7296 500 "0 0 0 0" --load-conc 16

# max_ike_sas 20: 20 UEs in, the 5 past it dropped at IKE_SA_INIT (no
# answer: RFC 7296 2.4 lets the initiator retransmit), one log line.
n3_start psk nwu --subscribers 25 --supi-first "$FIRST" --sub-seed "$SEED" --max-ike-sas 20
"$UE" --mode psk --profile nwu --peer "127.0.0.1:$N3PORT" --psk test-psk-1 \
	--ca "$CA" --supi-first "$FIRST" --sub-seed "$SEED" --load 25 --load-conc 25 \
	--hold 0 --retransmit-ms 100 --retransmit-tries 2 >"$TB/sum" 2>"$TB/ue.log" &
UEP=$!
i=0; while [ "$(grep -c 'failed:' "$TB/ue.log")" -lt 5 ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.5
check "max_ike_sas 20: the table holds 20" 20 "$(n3_stat sas)"
check "max_ike_sas 20: 5 UEs fail without an IKE_SA_INIT answer" 5 "$(grep -c 'no IKE_SA_INIT response' "$TB/ue.log")"
check_match "max_ike_sas 20: logged, rate-limited" '^[12]$' "$(grep -c '20 IKE SAs (max_ike_sas): a new IKE SA refused' "$TB/n3.log")"
kill -TERM "$UEP"; wait "$UEP"; UEP=""
check "max_ike_sas 20: summary: 20 established, 5 failed" "25 20 5" "$(sum ues) $(sum established) $(sum failed)"
kill -TERM "$N3PID"; wait "$N3PID"; N3PID=""
out=$("$N3" --mode psk --cert "$SAE_A_CERT" --key "$SAE_A_KEY" --max-ike-sas 3 2>&1)
check "config: --max-ike-sas 3: exit 2" 2 "$?"
check_match "config: --max-ike-sas 3: named" "max_ike_sas" "$out"
