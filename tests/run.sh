#!/bin/sh
# Runs every unit test (cmocka binaries in $BUILD/tests) and every
# integration test (tests/integ/*.sh, which start real daemons on loopback),
# then prints one summary line: "N passed, N failed, N skipped". A test file
# that ran no check fails; a skip ("skip - reason" from an integration test,
# "[  SKIPPED ]" from cmocka) is listed and counted apart, and any skip
# fails the run too: a prerequisite that is missing is never a pass.
# ONLY=unit or ONLY=integ restricts; T=name runs only tests whose name matches.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
BINDIR=${BINDIR:-bin}
export BUILD BINDIR
ONLY=${ONLY:-}
T=${T:-}
pass=0; fail=0; skip=0; failed=""; skipped=""
log=$(mktemp -d /tmp/qkd-tests.XXXXXX)

# Counts one test file's log: ok/not ok/skip lines and cmocka's per-test
# lines (its summary repeats them as "[  FAILED  ] N test(s), listed
# below:" and then each name again: count distinct names).
cm_count() {	# TAG logfile
	grep -E "^\\[$1\\] " "$2" | grep -vE '^\[[ A-Z]+\] [0-9]+ test\(s\)' |
		sort -u | wc -l
}
count() {	# name logfile status
	p=$(grep -cE '^\[       OK \]|^ok ' "$2")
	f=$(($(grep -cE '^not ok ' "$2") + $(cm_count "  FAILED  " "$2")))
	s=$(($(grep -cE '^skip ' "$2") + $(cm_count "  SKIPPED " "$2")))
	if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1	# crashed or exited early: count the file as a failure
	elif [ $((p + f + s)) -eq 0 ]; then
		f=1; echo "not ok - $1 ran no checks" >>"$2"
	fi
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
	[ "$s" -ne 0 ] && skipped="$skipped $1"
	if [ "$f" -ne 0 ]; then
		failed="$failed $1"
		printf 'FAIL %-28s %3d passed, %d failed, %d skipped (log: %s)\n' \
			"$1" "$p" "$f" "$s" "$2"
		grep -E '^\[  FAILED  \]|^not ok|^skip |^# ' "$2" | head -n 20 | sed 's/^/     /'
	elif [ "$s" -ne 0 ]; then
		printf 'SKIP %-28s %3d passed, %d skipped (log: %s)\n' "$1" "$p" "$s" "$2"
		grep -E '^\[  SKIPPED \]|^skip ' "$2" | head -n 20 | sed 's/^/     /'
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
[ -n "$skipped" ] && echo "skipped (a failure too):$skipped"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ "$skip" -eq 0 ] && [ "$pass" -gt 0 ]
