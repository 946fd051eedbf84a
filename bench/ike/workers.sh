#!/bin/sh
# Connections per second of ike-n3iwf in psk/rfc7296 (DH 14) with 1 crypto
# worker thread and with N (default: the online CPUs), side by side in one
# run: ROUNDS rounds, each runs both settings in turn, PROCS ike-ue
# processes at once, COUNT connections in a row each (no hold: every
# connection is set up and deleted). Prints per setting the median
# connections/s and the N3IWF's CPU use per thread kind (crypto workers,
# event loop) in cores, from /proc/PID/task/*/stat.
#
#   bench/ike/workers.sh [PROCS [COUNT [ROUNDS [N]]]]
#
# Note: the UEs run on the same machine and make a DH each too, so on a
# small machine they take about half the CPU; the N3IWF's own use (cores)
# says how far it spreads.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/bench/ike/lib.sh"
BINDIR=${BINDIR:-$top/bin}
P=${1:-8}; C=${2:-50}; R=${3:-3}; N=${4:-$(nproc)}
TMP=$(mktemp -d /tmp/ike-workers.XXXXXX)
trap 'kill $N3PID 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM
N3PID=
HZ=$(getconf CLK_TCK)

ticks() {	# COMM: CPU ticks of the N3IWF's threads named so
	cat /proc/"$N3PID"/task/*/stat 2>/dev/null |
		awk -v n="($1)" '$2 == n { t += $14 + $15 } END { print t + 0 }'
}

one() {	# WORKERS: "conns/s crypto_cores loop_cores" of one run
	rm -f "$TMP/ready"
	"$BINDIR/ike-n3iwf" --mode psk --profile rfc7296 --dh 14 --psk bench \
		--listen 127.0.0.1:0 --natt-port 0 --ready-file "$TMP/ready" \
		--crypto-workers "$1" --cookie-threshold 100000 \
		--log-level warn 2>"$TMP/n3.log" &
	N3PID=$!
	i=0
	while [ ! -s "$TMP/ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	port=$(sed -n 's/^port=//p' "$TMP/ready")
	sleep 0.5 # the stock of key pairs made, as on a server that waits
	c0=$(ticks ike-crypto); l0=$(ticks ike-n3iwf)
	t0=$(date +%s.%N)
	pids=""; k=0
	while [ $k -lt "$P" ]; do
		"$BINDIR/ike-ue" --mode psk --profile rfc7296 --dh 14 --psk bench \
			--peer "127.0.0.1:$port" --count "$C" --log-level warn \
			2>>"$TMP/ue.log" &
		pids="$pids $!"; k=$((k + 1))
	done
	fail=0
	for p in $pids; do wait "$p" || fail=$((fail + 1)); done
	t1=$(date +%s.%N)
	c1=$(ticks ike-crypto); l1=$(ticks ike-n3iwf)
	kill -TERM "$N3PID"; wait "$N3PID" || true
	[ "$fail" -eq 0 ] || echo "warning: $fail ike-ue failed (workers $1)" >&2
	awk -v n=$((P * C)) -v t0="$t0" -v t1="$t1" -v c=$((c1 - c0)) \
	    -v l=$((l1 - l0)) -v hz="$HZ" 'BEGIN { w = t1 - t0;
		printf "%.1f %.2f %.2f\n", n / w, c / hz / w, l / hz / w }'
}

echo "# ike-n3iwf psk/rfc7296 DH 14: $P ike-ue x $C connections, $R rounds, 1 vs $N crypto workers"
for r in $(seq 1 "$R"); do
	for w in 1 "$N"; do
		set -- $(one "$w")
		echo "round $r workers $w: $1 conn/s, N3IWF cores: crypto $2, loop $3"
		echo "$1" >>"$TMP/rate.$w"; echo "$2" >>"$TMP/crypto.$w"
		echo "$3" >>"$TMP/loop.$w"
	done
done
for w in 1 "$N"; do
	set -- $(stats <"$TMP/rate.$w"); rate=$1
	set -- $(stats <"$TMP/crypto.$w"); cr=$1
	set -- $(stats <"$TMP/loop.$w"); lo=$1
	echo "workers $w: median $rate conn/s; N3IWF cores: crypto $cr, loop $lo"
done
