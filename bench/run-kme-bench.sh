#!/bin/sh
# Runs kme-bench against a fresh local testbed (two qkd-sim KMEs on loopback,
# see tests/testbed.sh) and prints its results. Called by `make bench`.
#
# Environment (all optional):
#   BINDIR         folder of kme-bench and qkd-sim (default bin)
#   KEY_RATE       emulated secret-key rate, bits/s (default 200000000)
#   MAX_KEY_COUNT  key store cap of each KME (default 2000000)
#   CONNS          connection counts, comma list (default 1,4)
#   DURATION       measured seconds per phase (default 5)
#   FILL_S         seconds to let the key pool fill before the run (default 2)
#   KEEP=1         keep the testbed folder (logs) even when all went well
# Extra arguments are passed to kme-bench (e.g. -n 13 -s 256 --warmup 2).
# Exit status: kme-bench's (0 all calls succeeded, 2 some failed, 1 setup).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BINDIR=${BINDIR:-bin}
case $BINDIR in /*) ;; *) BINDIR=$top/$BINDIR ;; esac
KEY_RATE=${KEY_RATE:-200000000}
MAX_KEY_COUNT=${MAX_KEY_COUNT:-2000000}
CONNS=${CONNS:-1,4}
DURATION=${DURATION:-5}
FILL_S=${FILL_S:-2}
# The enc_keys phases leave more keys waiting at KME B than the default
# per-pair cap (max_keys_per_pair) allows: lift it to the store cap.
MAX_KEYS_PER_PAIR=$MAX_KEY_COUNT
export BINDIR KEY_RATE MAX_KEY_COUNT MAX_KEYS_PER_PAIR

die() { echo "run-kme-bench: $*" >&2; exit 1; }

for b in kme-bench qkd-sim; do
	[ -x "$BINDIR/$b" ] || die "$BINDIR/$b not built (run make)"
done
[ -f tests/testbed.sh ] || die "tests/testbed.sh missing"

dir=$(mktemp -d /tmp/kme-bench.XXXXXX)
rc=1
cleanup() {
	trap - EXIT INT TERM
	sh tests/testbed.sh down "$dir" >/dev/null 2>&1 || true
	if [ "$rc" -eq 0 ] && [ "${KEEP:-0}" != 1 ]; then
		rm -rf "$dir"
	else
		echo "run-kme-bench: testbed folder kept: $dir" >&2
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== kme-bench on the loopback testbed (qkd-sim pair)"
echo "key rate ${KEY_RATE} bits/s, max_key_count ${MAX_KEY_COUNT}," \
	"pool fill ${FILL_S} s, connections ${CONNS}, ${DURATION} s per phase"
echo "host: $(nproc) cores, $(uname -sr); tree: $(git rev-parse --short HEAD 2>/dev/null || echo uncommitted)"
sh tests/testbed.sh up "$dir" || die "testbed did not start; logs in $dir"
sleep "$FILL_S"
set -a
. "$dir/testbed.env"
# The KMEs know the SAEs by kmsd's certificates (tests/testbed.sh).
SAE_A_CERT=$KME_SAE_A_CERT; SAE_A_KEY=$KME_SAE_A_KEY
SAE_B_CERT=$KME_SAE_B_CERT; SAE_B_KEY=$KME_SAE_B_KEY
set +a

# Status through a file: a pipeline's status is that of `tee`.
{ st=0; "$BINDIR/kme-bench" -c "$CONNS" -d "$DURATION" "$@" || st=$?; echo $st > "$dir/bench.rc"; } |
	tee "$dir/bench.out"
rc=$(cat "$dir/bench.rc")
grep -q '^RESULT ' "$dir/bench.out" || rc=1

echo
echo "== summary (key rate ${KEY_RATE} bits/s)"
printf '%-5s %5s %10s %7s %10s %9s %9s %9s %9s\n' \
	phase conns calls errors calls/s p50_ms p90_ms p99_ms max_ms
sed -n 's/^RESULT //p' "$dir/bench.out" | while read -r line; do
	v() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
	printf '%-5s %5s %10s %7s %10s %9s %9s %9s %9s\n' "$(v phase)" \
		"$(v conns)" "$(v calls)" "$(v errors)" "$(v calls_per_s)" \
		"$(v p50_ms)" "$(v p90_ms)" "$(v p99_ms)" "$(v max_ms)"
done
if [ "$rc" -ne 0 ]; then
	echo "run-kme-bench: some calls failed (exit $rc); KME logs:" >&2
	tail -n 5 "$dir"/kme-*.log >&2 2>/dev/null || true
fi
exit "$rc"
