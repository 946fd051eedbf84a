# Sourced by the kmsd benches (run-kmsd-bench.sh, run-kmsd-pg-bench.sh).
# kmsd_bench_env PATHS: the environment tests/testbed.sh reads, sized for
# ROUNDS x CALLS enc_keys calls (13 keys each, two connection counts) on
# each of PATHS key paths that draw from the KMEs: kmsd's pool filled to
# exactly what its phases take (POOL_HIGH) and the KMEs' store cap to what
# all paths take, so that neither the refill thread nor the emulated link
# generates keys while the clock runs.
kmsd_bench_env() {
	need=$((ROUNDS * CALLS * 13 * 2 + 20000))
	export KEY_RATE=${KEY_RATE:-200000000}
	export MAX_KEY_COUNT=$(($1 * need + 100000))
	# The pool leaves more keys waiting at KME B than the default per-pair
	# cap (max_keys_per_pair) allows: lift it to the store cap.
	export MAX_KEYS_PER_PAIR=$MAX_KEY_COUNT
	export MAX_KEY_PER_REQUEST=1024
	export POOL_HIGH=$need
	export POOL_LOW=1000
	export POOL_BATCH=1024
	export POOL_LEASE=${POOL_LEASE:-1024}
}
