#!/bin/sh
# Runs every unit test (cmocka binaries in $BUILD/tests) and every
# integration test (tests/integ/*.sh, which start real daemons on loopback),
# then prints one summary line: "N passed, N failed".
# ONLY=unit or ONLY=integ restricts; T=name runs only tests whose name matches.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
BINDIR=${BINDIR:-bin}
export BUILD BINDIR
ONLY=${ONLY:-}
T=${T:-}
pass=0; fail=0; failed=""
log=$(mktemp -d /tmp/qkd-tests.XXXXXX)

count() {	# name logfile status
	p=$(grep -cE '^\[       OK \]|^ok ' "$2")
	f=$(grep -cE '^\[  FAILED  \] [a-z_0-9]|^not ok ' "$2")
	if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1	# crashed or exited early: count the file as a failure
	fi
	pass=$((pass + p)); fail=$((fail + f))
	if [ "$f" -ne 0 ]; then
		failed="$failed $1"
		printf 'FAIL %-28s %3d passed, %d failed (log: %s)\n' "$1" "$p" "$f" "$2"
		grep -E '^\[  FAILED  \]|^not ok|^# ' "$2" | head -n 20 | sed 's/^/     /'
	else
		printf 'ok   %-28s %3d passed\n' "$1" "$p"
	fi
}

if [ "$ONLY" != integ ]; then
	for t in "$BUILD"/tests/test_*; do
		[ -x "$t" ] || continue
		n=$(basename "$t")
		case $n in *"$T"*) ;; *) continue ;; esac
		"$t" >"$log/$n.log" 2>&1
		count "$n" "$log/$n.log" $?
	done
fi
if [ "$ONLY" != unit ]; then
	for t in tests/integ/test_*.sh; do
		[ -f "$t" ] || continue
		n=$(basename "$t" .sh)
		case $n in *"$T"*) ;; *) continue ;; esac
		timeout 600 sh "$t" >"$log/$n.log" 2>&1
		count "$n" "$log/$n.log" $?
	done
fi
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
