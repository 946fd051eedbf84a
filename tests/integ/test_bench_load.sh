#!/bin/sh
# Smoke test of the many-UEs bench (bench/load/run.sh --quick): it runs
# end to end (test bed, ike-n3iwf in every mode, charon in its namespace,
# ike-ue's load mode) and its table is complete and sane, at saturation
# only (--steps "": one cell per variant; the rate steps run the same cell
# code at a set --load-rate, and took the test past a minute). Not a timed
# check: the numbers are only checked for being there and consistent
# (every UE established, p50 <= p99, keys per connection as each mode
# draws them counted at the key servers, the responder's memory and CPU
# grew). Needs root and strongSwan, like the bench; a missing one fails.
#   UES (default 50): UEs per cell
. "$(dirname "$0")/lib.sh"
UES=${UES:-50}
OUTD=$TB/load
[ "$(id -u)" = 0 ] || { nok "needs root (the bench's charon namespace)"; exit 1; }
variants="psk:nwu cert:nwu qkd:nwu qkd+dh:nwu psk:rfc7296 qkd:rfc7296 charon"
t0=$(date +%s)
if sh bench/load/run.sh --quick --ues "$UES" --steps "" --out "$OUTD" >"$TB/run.log" 2>&1; then
	ok "bench/load/run.sh --quick --ues $UES ($(($(date +%s) - t0)) s)"
else
	nok "bench/load/run.sh --quick: exit $?: $(tail -n 5 "$TB/run.log" | tr '\n' ' ')"
	exit 1
fi
S=$OUTD/summary.csv
check "summary.csv: one cell per variant" 7 "$(($(wc -l <"$S") - 1))"
check "table.txt: 7 rows" 7 "$(grep -c '^| [ic][kh]' "$OUTD/table.txt")"

# field VARIANT RATE COLUMN: one value of summary.csv.
field() {
	awk -F, -v v="$1" -v r="$2" -v c="$3" 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i; next }
	$1 == v && $3 == r { print $h[c] }' "$S"
}
for v in $variants; do
	r=0
	c="$v, --load-rate $r"
	check "$c: 0 failed" 0 "$(field "$v" $r failed)"
	check_match "$c: conn/s" '^[0-9]+(\.[0-9]+)?$' "$(field "$v" $r conn_s)"
	p50=$(field "$v" $r p50_ms); p99=$(field "$v" $r p99_ms)
	check "$c: 0 < p50 ($p50) <= p99 ($p99)" 1 \
	    "$(awk -v a="$p50" -v b="$p99" 'BEGIN { print (a > 0 && a <= b) }')"
	case $v in
	qkd:*) k=13 ;; qkd+dh:*) k=1 ;; *) k=0 ;;
	esac
	check "$c: keys per connection at kmsd A" $k "$(field "$v" $r keys_a_per_conn)"
	check "$c: keys per connection at kmsd B" $k "$(field "$v" $r keys_b_per_conn)"
	check "$c: memory per UE > 0 KiB" 1 \
	    "$(awk -v a="$(field "$v" $r kib_per_ue)" 'BEGIN { print (a > 0) }')"
	check "$c: CPU per connection > 0" 1 \
	    "$(awk -v a="$(field "$v" $r cpu_ms_per_conn)" 'BEGIN { print (a > 0) }')"
done
# Every cell and round: all UEs up at once at the end (held_max = UEs).
check "raw.csv: every UE established and held in every cell" "" \
    "$(awk -F, -v u="$UES" 'NR > 1 && ($5 != u || $13 != u) { print $1, $3, $5, $13 }' "$OUTD/raw.csv")"
check_match "the charon ratio is printed" 'qkd:nwu / charon: [0-9.]+ / [0-9.]+ conn/s' \
    "$(cat "$OUTD/table.txt")"
