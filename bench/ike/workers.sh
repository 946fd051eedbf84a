#!/bin/sh
# ike-n3iwf in psk/rfc7296 (DH 14) with 1 crypto worker thread and with N
# (default: the online CPUs), side by side in one run: ROUNDS rounds, each
# runs both settings in turn, twice:
#  - conn: PROCS ike-ue processes at once, COUNT connections in a row each
#    (no hold: every connection is set up and deleted): connections/s;
#  - init: bench/ike/init_load.py keeps 32 IKE_SA_INITs outstanding for
#    SECONDS (a load generator without crypto): IKE_SA_INIT responses/s,
#    i.e. the N3IWF's DH capacity.
# Prints per setting the medians and the N3IWF's CPU use per thread kind
# (crypto workers, event loop) in cores, from /proc/PID/task/*/stat.
#
#   bench/ike/workers.sh [PROCS [COUNT [ROUNDS [N [SECONDS]]]]]
#
# Note: in the conn runs the UEs run on the same machine and make a DH
# each too, so on a small machine they, not the N3IWF, set the pace; the
# init runs show what the workers add.
# shellcheck disable=SC2046 # set -- $(...): the words are numbers
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/bench/ike/lib.sh"
BINDIR=${BINDIR:-$top/bin}
P=${1:-8}; C=${2:-50}; R=${3:-3}; N=${4:-$(nproc)}; S=${5:-4}
TMP=$(mktemp -d /tmp/ike-workers.XXXXXX)
trap 'kill $N3PID 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM
N3PID=
HZ=$(getconf CLK_TCK)

ticks() {	# COMM: CPU ticks of the N3IWF's threads named so
	cat /proc/"$N3PID"/task/*/stat 2>/dev/null |
		awk -v n="($1)" '$2 == n { t += $14 + $15 } END { print t + 0 }'
}

n3() {	# WORKERS [flags]: the N3IWF started, port in $port
	rm -f "$TMP/ready"
	w=$1; shift
	"$BINDIR/ike-n3iwf" --mode psk --profile rfc7296 --dh 14 --psk bench \
		--listen 127.0.0.1:0 --natt-port 0 --ready-file "$TMP/ready" \
		--crypto-workers "$w" --cookie-threshold 100000 \
		--log-level warn "$@" 2>"$TMP/n3.log" &
	N3PID=$!
	i=0
	while [ ! -s "$TMP/ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	port=$(sed -n 's/^port=//p' "$TMP/ready")
	sleep 0.5 # the stock of key pairs made, as on a server that waits
	c0=$(ticks ike-crypto); l0=$(ticks ike-n3iwf)
}

cores() {	# N T0 T1: "rate crypto_cores loop_cores", the N3IWF stopped
	c1=$(ticks ike-crypto); l1=$(ticks ike-n3iwf)
	kill -TERM "$N3PID"; wait "$N3PID" || true
	awk -v n="$1" -v t0="$2" -v t1="$3" -v c=$((c1 - c0)) \
	    -v l=$((l1 - l0)) -v hz="$HZ" 'BEGIN { w = t1 - t0;
		printf "%.1f %.2f %.2f\n", n / w, c / hz / w, l / hz / w }'
}

one_init() {	# WORKERS: "init/s crypto_cores loop_cores" of one run
	n3 "$1" --half-open-ms 200 # the load's SAs never reach IKE_AUTH
	t0=$(date +%s.%N)
	out=$(python3 "$top/bench/ike/init_load.py" --target "127.0.0.1:$port" \
		--seconds "$S")
	t1=$(date +%s.%N)
	cores "$(echo "$out" | sed -n 's/.*answered=\([0-9]*\).*/\1/p')" "$t0" "$t1"
}

one() {	# WORKERS: "conns/s crypto_cores loop_cores" of one run
	n3 "$1"
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
	[ "$fail" -eq 0 ] || echo "warning: $fail ike-ue failed (workers $1)" >&2
	cores $((P * C)) "$t0" "$t1"
}

echo "# ike-n3iwf psk/rfc7296 DH 14, 1 vs $N crypto workers, $R rounds: conn = $P ike-ue x $C connections; init = IKE_SA_INIT load for $S s"
for r in $(seq 1 "$R"); do
	for kind in conn init; do
		for w in 1 "$N"; do
			if [ "$kind" = conn ]; then set -- $(one "$w")
			else set -- $(one_init "$w"); fi
			echo "round $r $kind workers $w: $1/s, N3IWF cores: crypto $2, loop $3"
			echo "$1" >>"$TMP/rate.$kind.$w"
			echo "$2" >>"$TMP/crypto.$kind.$w"
			echo "$3" >>"$TMP/loop.$kind.$w"
		done
	done
done
for kind in conn init; do
	for w in 1 "$N"; do
		set -- $(stats <"$TMP/rate.$kind.$w"); rate=$1
		set -- $(stats <"$TMP/crypto.$kind.$w"); cr=$1
		set -- $(stats <"$TMP/loop.$kind.$w"); lo=$1
		echo "$kind workers $w: median $rate/s; N3IWF cores: crypto $cr, loop $lo"
	done
done
