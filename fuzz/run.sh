#!/bin/sh
# Runs each fuzz target TIME seconds, from its seeds in fuzz/corpus/NAME/ and
# what earlier runs found (build/fuzz/corpus/NAME/), one at a time. Prints
# runs and exec/s per target; exits 1 if any crashed, leaked, hung or
# tripped a sanitizer (the input is kept as build/fuzz/NAME-crash-*).
# usage: sh fuzz/run.sh TIME NAME...
set -u
# A small quarantine and short allocation stacks halve the CPU per input;
# every input allocates far less than 16 MB, so use-after-free is still seen.
ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16:malloc_context_size=10}
export ASAN_OPTIONS
time=$1
shift
fail=0
for t in "$@"; do
	mkdir -p "build/fuzz/corpus/$t"
	log="build/fuzz/$t.log"
	if "./build/fuzz/$t" -max_total_time="$time" -timeout=10 \
	    -print_final_stats=1 -artifact_prefix="build/fuzz/$t-" \
	    "build/fuzz/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1; then
		st=ok
	else
		st=FAILED
		fail=1
	fi
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	printf '  FUZZ   %-10s %s: %s runs, %s exec/s\n' "$t" "$st" \
	    "${runs:-?}" "${rate:-?}"
	if [ "$st" != ok ]; then
		grep -m 1 -A 30 'ERROR\|runtime error\|Sanitizer' "$log" || tail -n 30 "$log"
	fi
done
exit $fail
