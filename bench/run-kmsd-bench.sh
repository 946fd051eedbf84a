#!/bin/sh
# enc_keys (13 x 256-bit keys) through kmsd A from its pool, and the same call
# straight to KME A, side by side in one run: ROUNDS alternating rounds of
# {KME direct, kmsd} x {1, 4 connections}, each phase CALLS calls (or
# DURATION s). Prints per-phase results, then the median over the rounds of
# calls/s, p50 and p99 for each configuration and the kmsd/direct ratio.
#
# The pool is filled to exactly what the kmsd phases take, and the KMEs'
# max_key_count to what both paths take, so that neither the refill thread
# nor the emulated link generates keys while the clock runs. No warm-up
# phase (it would drain the pool); each phase's first call opens its TLS
# connection, which is one call in CALLS.
#
# Environment: BINDIR (default bin), ROUNDS (3), CALLS (8000), DURATION (3),
# KEY_RATE (200000000 bits/s), POOL_LEASE (1024), KEEP=1 keeps the logs.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BINDIR=${BINDIR:-bin}
case $BINDIR in /*) ;; *) BINDIR=$top/$BINDIR ;; esac
ROUNDS=${ROUNDS:-3}
CALLS=${CALLS:-8000}
DURATION=${DURATION:-3}
export BINDIR
. "$top/bench/kmsd_env.sh"
kmsd_bench_env 2

dir=$(mktemp -d /tmp/kmsd-bench.XXXXXX)
rc=1
cleanup() {
	sh tests/testbed.sh down "$dir" >/dev/null 2>&1 || true
	if [ "$rc" -eq 0 ] && [ "${KEEP:-0}" != 1 ]; then rm -rf "$dir"
	else echo "run-kmsd-bench: logs kept in $dir" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT

echo "== enc_keys 13 x 256 bits: kmsd A (pool) vs KME A (direct), $ROUNDS rounds"
echo "host: $(nproc) cores, $(uname -sr); tree $(git rev-parse --short HEAD 2>/dev/null || echo ?)"
echo "key rate $KEY_RATE bits/s; pool $POOL_HIGH keys, lease $POOL_LEASE; $CALLS calls or ${DURATION} s per phase"
sh tests/testbed.sh up "$dir" >/dev/null
set -a; . "$dir/testbed.env"; set +a

# Let kmsd A fill its pool before measuring.
i=0
while :; do
	have=$(curl -s "$KMSD_A_OPS/healthz" | jq '.pools[0].keys')
	[ "$have" -ge $((POOL_HIGH - 1024)) ] && break
	i=$((i + 1)); [ $i -lt 1500 ] || { echo "pool did not fill ($have keys)" >&2; exit 1; }
	sleep 0.2
done
echo "pool filled: $have keys"

run() {	# name url conns cert key (the KME takes only kmsd's certificates)
	"$BINDIR/kme-bench" --enc-only --url-a "$2" -c "$3" --calls "$CALLS" \
		--cert-a "$4" --key-a "$5" \
		-d "$DURATION" --warmup 0 >"$dir/out" 2>&1 || { cat "$dir/out" >&2; return 1; }
	sed -n "s/^RESULT /name=$1 /p" "$dir/out" | tee -a "$dir/results"
}
: >"$dir/results"
r=1
while [ $r -le "$ROUNDS" ]; do
	for c in 1 4; do
		run kme "$KME_A_URL" $c "$KME_SAE_A_CERT" "$KME_SAE_A_KEY"
		run kmsd "$KMSD_A_URL" $c "$SAE_A_CERT" "$SAE_A_KEY"
	done
	r=$((r + 1))
done
hits=$(curl -s "$KMSD_A_OPS/metrics" | sed -n 's/^kmsd_pool_requests_total{result="hit"} //p')
miss=$(curl -s "$KMSD_A_OPS/metrics" | sed -n 's/^kmsd_pool_requests_total{result="miss"} //p')

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }
pick() { grep "name=$1 " "$dir/results" | grep " conns=$2 " | while read -r l; do echo "$l" | field "$3"; done | median; }

echo
echo "== medians over $ROUNDS rounds (pool hits $hits, misses $miss)"
printf '%-6s %5s %10s %8s %8s %8s\n' path conns calls/s p50_ms p99_ms errors
for c in 1 4; do
	for n in kme kmsd; do
		printf '%-6s %5s %10s %8s %8s %8s\n' $n $c "$(pick $n $c calls_per_s)" \
			"$(pick $n $c p50_ms)" "$(pick $n $c p99_ms)" "$(pick $n $c errors)"
	done
	k=$(pick kme $c calls_per_s); d=$(pick kmsd $c calls_per_s)
	echo "ratio kmsd/kme calls/s at $c conn: $(echo "$d $k" | awk '{printf "%.2f", $1 / $2}')"
done
rc=0
