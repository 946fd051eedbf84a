#!/bin/sh
# enc_keys (13 x 256-bit keys from the pool) per second through 1 kmsd on
# SQLite (the test bed's kmsd A), 1 kmsd on PostgreSQL (P1) and 2 kmsd on
# one PostgreSQL pool (P1 and P2, half the connections each, calls/s
# summed), in one run: ROUNDS alternating rounds of the three, CONNS
# connections in all, each phase CALLS calls (or DURATION s). Prints each
# phase, then the medians. Both pools are filled first to what their phases
# take (PostgreSQL's by one refiller), so that no refill from the KME runs
# while the clock does; leases run as usual.
#
# Environment: BINDIR (default bin), ROUNDS (3), CALLS (4000), DURATION (3),
# CONNS (4), KEY_RATE (200000000 bits/s), POOL_LEASE (1024), KEEP=1.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BINDIR=${BINDIR:-bin}
case $BINDIR in /*) ;; *) BINDIR=$top/$BINDIR ;; esac
ROUNDS=${ROUNDS:-3}
CALLS=${CALLS:-4000}
DURATION=${DURATION:-3}
CONNS=${CONNS:-4}
export BINDIR
. "$top/bench/kmsd_env.sh"
kmsd_bench_env 3

TB=$(mktemp -d /tmp/kmsd-pg-bench.XXXXXX)
dir=$TB
rc=1
. "$top/tests/integ/pg_lib.sh"
cleanup() {
	pgk_cleanup
	sh tests/testbed.sh down "$dir" >/dev/null 2>&1 || true
	if [ "$rc" -eq 0 ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$dir"
	else echo "run-kmsd-pg-bench: logs kept in $dir" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== enc_keys 13 x 256 bits from the pool: 1 kmsd SQLite, 1 and 2 kmsd PostgreSQL, $ROUNDS rounds"
echo "host: $(nproc) cores, $(uname -sr); tree $(git rev-parse --short HEAD 2>/dev/null || echo ?)"
echo "pools $POOL_HIGH keys each, lease $POOL_LEASE; $CONNS connections; $CALLS calls or ${DURATION} s per phase"
sh tests/testbed.sh up "$dir" >/dev/null
set -a; . "$dir/testbed.env"; set +a
pg_up
pgk_up 1
pgk_up 2

# filled WHAT CMD: waits until CMD prints at least POOL_HIGH - 2048 keys.
filled() {
	i=0
	while :; do
		have=$(eval "$2")
		[ "${have:-0}" -ge $((POOL_HIGH - 2048)) ] && break
		i=$((i + 1)); [ $i -lt 1500 ] || { echo "$1 did not fill ($have keys)" >&2; exit 1; }
		sleep 0.2
	done
	echo "$1 filled: $have keys"
}
filled "SQLite pool" "curl -s $KMSD_A_OPS/healthz | jq '.pools[0].keys'"
filled "PostgreSQL pool" "pg_sql 'SELECT coalesce(sum(n), 0) FROM batches'"

bench() {	# url conns calls out
	"$BINDIR/kme-bench" --enc-only --url-a "$1" -c "$2" --calls "$3" \
		--cert-a "$SAE_A_CERT" --key-a "$SAE_A_KEY" \
		-d "$DURATION" --warmup 0 >"$4" 2>&1 || { cat "$4" >&2; return 1; }
}
res() { sed -n 's/^RESULT //p' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
: >"$dir/results"
r=1
half=$((CONNS / 2))
while [ $r -le "$ROUNDS" ]; do
	bench "$KMSD_A_URL" "$CONNS" "$CALLS" "$dir/o1"
	echo "name=sqlite1 calls_per_s=$(res "$dir/o1" calls_per_s) p50_ms=$(res "$dir/o1" p50_ms) p99_ms=$(res "$dir/o1" p99_ms)" | tee -a "$dir/results"
	bench "$P1_URL" "$CONNS" "$CALLS" "$dir/o1"
	echo "name=pg1 calls_per_s=$(res "$dir/o1" calls_per_s) p50_ms=$(res "$dir/o1" p50_ms) p99_ms=$(res "$dir/o1" p99_ms)" | tee -a "$dir/results"
	bench "$P1_URL" "$half" $((CALLS / 2)) "$dir/o1" & j=$!
	bench "$P2_URL" $((CONNS - half)) $((CALLS / 2)) "$dir/o2"
	wait $j
	s=$(echo "$(res "$dir/o1" calls_per_s) $(res "$dir/o2" calls_per_s)" | awk '{ printf "%.0f", $1 + $2 }')
	echo "name=pg2 calls_per_s=$s p50_ms=$(res "$dir/o1" p50_ms)/$(res "$dir/o2" p50_ms) p99_ms=$(res "$dir/o1" p99_ms)/$(res "$dir/o2" p99_ms)" | tee -a "$dir/results"
	r=$((r + 1))
done
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
pick() { grep "name=$1 " "$dir/results" | tr ' ' '\n' | sed -n "s/^$2=//p" | median; }
hits=0; miss=0
for o in "$KMSD_A_OPS" "$P1_OPS" "$P2_OPS"; do
	h=$(curl -s "$o/metrics" | sed -n 's/^kmsd_pool_requests_total{result="hit"} //p')
	m=$(curl -s "$o/metrics" | sed -n 's/^kmsd_pool_requests_total{result="miss"} //p')
	hits=$((hits + ${h:-0})); miss=$((miss + ${m:-0}))
done
echo
echo "== medians over $ROUNDS rounds, $CONNS connections (pool hits $hits, misses $miss)"
printf '%-24s %10s\n' setup calls/s
printf '%-24s %10s\n' "1 kmsd, SQLite" "$(pick sqlite1 calls_per_s)"
printf '%-24s %10s\n' "1 kmsd, PostgreSQL" "$(pick pg1 calls_per_s)"
printf '%-24s %10s\n' "2 kmsd, one PostgreSQL" "$(pick pg2 calls_per_s)"
rc=0
