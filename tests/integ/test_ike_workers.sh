#!/bin/sh
# The N3IWF's public-key work runs in its crypto worker threads, off the
# event loop (issue 12). Many UEs at once (several ike-ue processes, each
# with connections in a row) against one N3IWF:
#  - psk/rfc7296, DH 14, 2 crypto workers, 480 connections from 6
#    processes: every connection established,
#    the same SPI pairs logged at both ends; the DH of each done by a
#    worker; the CPU time, read per thread from /proc/PID/task/*/stat,
#    is mostly the workers' (named ike-crypto), both of them busy;
#  - cert/nwu: the UE's certificate and signature checked and ours made
#    by a worker, for every connection;
#  - overload: a crypto queue of 1 with slow jobs (test hook
#    IKE_TEST_CPU_DELAY_MS): IKE_SA_INITs past it are dropped unanswered
#    (stats cpu_busy), the UEs retransmit, and every connection is
#    established in the end;
#  - an IKE SA that expires while its DH runs: the job's keys are wiped
#    and no IKE_SA_INIT response goes; retransmitted IKE_SA_INITs of an SA
#    whose DH runs are absorbed (one DH, one response).
. "$(dirname "$0")/lib.sh"
tb_up
. "$(dirname "$0")/ike_lib.sh"

ue_par() {	# MODE PROFILE PROCS COUNT [args]: UEFAIL = ike-ue that failed
	m=$1; p=$2; np=$3; c=$4; shift 4
	pids=""; i=1
	while [ $i -le "$np" ]; do
		timeout 120 "$UE" --mode "$m" --profile "$p" \
			--peer "127.0.0.1:$N3PORT" --psk test-psk-1 --ca "$CA" \
			--cert "$SAE_B_CERT" --key "$SAE_B_KEY" --count "$c" \
			"$@" 2>"$TB/ue$i.log" &
		pids="$pids $!"; i=$((i + 1))
	done
	UEFAIL=0
	for pid in $pids; do wait "$pid" || UEFAIL=$((UEFAIL + 1)); done
}
spis() {	# LOG...: "SPIi SPIr" of every established IKE SA, sorted
	cat "$@" | grep -o 'IKE SA established ([^)]*) [0-9a-f]*_i [0-9a-f]*_r' |
		awk '{ print $5, $6 }' | sort
}
ticks() {	# COMM: CPU ticks (user + system) of the N3IWF's threads named so
	cat /proc/"$N3PID"/task/*/stat 2>/dev/null |
		awk -v n="($1)" '$2 == n { t += $14 + $15 } END { print t + 0 }'
}
busy_threads() {	# COMM MIN: threads named so with at least MIN ticks
	cat /proc/"$N3PID"/task/*/stat 2>/dev/null |
		awk -v n="($1)" -v m="$2" '$2 == n && $14 + $15 >= m { c++ } END { print c + 0 }'
}
n3_stop() {	# SIGTERM, wait: the stats line is in the log
	kill -TERM "$N3PID" 2>/dev/null; wait "$N3PID"
}
stat_of() {	# NAME: the value of NAME= in the N3IWF's last stats line
	grep 'stats: init=' "$TB/n3.log" | tail -n 1 | grep -o " $1=[0-9]*" | cut -d= -f2
}
sane() {	# TAG: no sanitizer report in any log
	if grep -qiE 'sanitizer|runtime error' "$TB"/ue*.log "$TB/n3.log"; then
		nok "$1: sanitizer report"; else ok "$1: no sanitizer report"; fi
}

# ---- 1. many UEs, psk/rfc7296, DH 14, 2 crypto workers ----
P=6; C=80; T=$((P * C)); t=psk/rfc7296
rm -f "$TB"/ue*.log
n3_start psk rfc7296 --dh 14 --crypto-workers 2 --cookie-threshold 64
[ -n "$N3PORT" ] || { nok "$t: N3IWF did not start: $(tail -n 2 "$TB/n3.log")"; exit 1; }
check "$t: 2 crypto worker threads" 2 "$(ls /proc/"$N3PID"/task | while read -r k; do cat /proc/"$N3PID"/task/"$k"/comm; done | grep -c '^ike-crypto$')"
start=$(date +%s.%N)
ue_par psk rfc7296 "$P" "$C" --dh 14
end=$(date +%s.%N)
check "$t: every ike-ue exits 0" 0 "$UEFAIL"
crypto=$(ticks ike-crypto); loop=$(ticks ike-n3iwf)
both=$(busy_threads ike-crypto 5)
n3_stop
check "$t: UEs established $T" "$T" "$(spis "$TB"/ue*.log | wc -l)"
check "$t: N3IWF established $T" "$T" "$(spis "$TB/n3.log" | wc -l)"
if [ "$(spis "$TB"/ue*.log)" = "$(spis "$TB/n3.log")" ]; then
	ok "$t: the same $T SPI pairs at both ends"
else
	nok "$t: SPI pairs differ between the UEs and the N3IWF"
fi
check "$t: $T DH by a crypto worker" "$T" "$(grep -c 'DH MODP_2048 by a crypto worker' "$TB/n3.log")"
wall=$(echo "$end - $start" | bc)
echo "# $t: $T connections in $wall s; N3IWF CPU ticks: crypto workers $crypto, loop $loop"
if [ "$crypto" -gt "$loop" ]; then
	ok "$t: the crypto workers used more CPU than the loop ($crypto > $loop ticks)"
else
	nok "$t: the crypto workers used $crypto ticks, the loop $loop"
fi
check "$t: both crypto workers busy (>= 5 ticks each)" 2 "$both"
sane "$t"

# ---- 2. cert/nwu: signatures checked and made by a worker ----
P=3; C=4; T=$((P * C)); t=cert/nwu
rm -f "$TB"/ue*.log
n3_start cert nwu --crypto-workers 2
ue_par cert nwu "$P" "$C"
check "$t: every ike-ue exits 0" 0 "$UEFAIL"
n3_stop
check "$t: N3IWF established $T" "$T" "$(spis "$TB/n3.log" | wc -l)"
if [ "$(spis "$TB"/ue*.log)" = "$(spis "$TB/n3.log")" ]; then
	ok "$t: the same $T SPI pairs at both ends"
else
	nok "$t: SPI pairs differ between the UEs and the N3IWF"
fi
check "$t: $T UE signatures checked, ours made, by a worker" "$T" \
	"$(grep -c 'IKE_AUTH signatures checked and made by a crypto worker' "$TB/n3.log")"
check "$t: $T DH by a worker" "$T" "$(grep -c 'DH MODP_2048 by a crypto worker' "$TB/n3.log")"
sane "$t"

# ---- 3. overload: queue of 1, slow jobs: dropped, retransmitted, done ----
P=6; C=5; T=$((P * C)); t="overload (crypto queue 1)"
rm -f "$TB"/ue*.log
export IKE_TEST_CPU_DELAY_MS=40
n3_start psk rfc7296 --crypto-workers 1 \
	--crypto-queue 1 --crypto-stock 0 --cookie-threshold 64
unset IKE_TEST_CPU_DELAY_MS
ue_par psk rfc7296 "$P" "$C" --retransmit-ms 200 --retransmit-tries 8
check "$t: every ike-ue exits 0" 0 "$UEFAIL"
n3_stop
busy=$(stat_of cpu_busy); init=$(stat_of init)
echo "# $t: $init IKE_SA_INIT received, ${busy:-?} dropped (queue full)"
if [ "${busy:-0}" -gt 0 ]; then ok "$t: IKE_SA_INITs dropped ($busy)"
else nok "$t: no IKE_SA_INIT was dropped (cpu_busy=${busy:-none})"; fi
if [ "${init:-0}" -ge "$((T + ${busy:-0}))" ]; then
	ok "$t: every dropped IKE_SA_INIT came again ($init >= $T + $busy)"
else
	nok "$t: $init IKE_SA_INIT received for $T connections and $busy drops"
fi
check "$t: N3IWF established $T" "$T" "$(spis "$TB/n3.log" | wc -l)"
if [ "$(spis "$TB"/ue*.log)" = "$(spis "$TB/n3.log")" ]; then
	ok "$t: the same $T SPI pairs at both ends"
else
	nok "$t: SPI pairs differ between the UEs and the N3IWF"
fi
check "$t: drops logged as such" 1 "$(grep -c 'crypto queue full: IKE_SA_INIT dropped' "$TB/n3.log" | awk '{ print ($1 > 0) }')"
sane "$t"

# ---- 4. the SA expires while its DH runs; retransmits absorbed ----
t="SA gone before its DH"
rm -f "$TB"/ue*.log
export IKE_TEST_CPU_DELAY_MS=1500
n3_start psk rfc7296 --crypto-workers 1 \
	--half-open-ms 100 --crypto-stock 0
unset IKE_TEST_CPU_DELAY_MS
ue_par psk rfc7296 1 1 --retransmit-ms 2500 --retransmit-tries 1
check "$t: ike-ue fails" 1 "$UEFAIL"
n3_stop
check "$t: the DH came back to no SA, its keys wiped" 1 "$(grep -c 'DH for an IKE SA that is gone: keys wiped' "$TB/n3.log")"
check "$t: its DH result unused" 0 "$(grep -c 'DH MODP_2048 by a crypto worker' "$TB/n3.log")"
check "$t: IKE SA expired at the N3IWF" 1 "$(grep -c 'IKE SA not established within 100 ms' "$TB/n3.log")"
check "$t: the UE got no IKE_SA_INIT response" 0 "$(grep -c 'IKE SA established' "$TB/ue1.log")"

t="retransmits absorbed while the DH runs"
rm -f "$TB"/ue*.log
export IKE_TEST_CPU_DELAY_MS=400
n3_start psk rfc7296 --crypto-workers 1 \
	--crypto-stock 0
unset IKE_TEST_CPU_DELAY_MS
ue_par psk rfc7296 1 1 --retransmit-ms 150
check "$t: ike-ue exits 0" 0 "$UEFAIL"
n3_stop
check "$t: one IKE SA established" 1 "$(spis "$TB/n3.log" | wc -l)"
check "$t: one DH" 1 "$(grep -c 'DH MODP_2048 by a crypto worker' "$TB/n3.log")"
check "$t: the UE established it" 1 "$(spis "$TB/ue1.log" | wc -l)"
absorbed=$(stat_of dup_absorbed)
if [ "${absorbed:-0}" -ge 1 ]; then ok "$t: $absorbed retransmitted IKE_SA_INIT(s) absorbed"
else nok "$t: no retransmit absorbed (dup_absorbed=${absorbed:-none})"; fi
sane "$t"
