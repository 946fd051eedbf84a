#!/bin/sh
# rounds.sh: run.sh ROUNDS times in one go, the configurations in order in
# odd rounds and reversed in even ones (so no configuration always runs
# first or last while the machine's load drifts), then the median over the
# rounds of each configuration's figures, and of its legs (TRACE=1).
#
#   ROUNDS=3 CONFIGS="plain tunfwd ours-gcm-spin0 ours-gcm" \
#       sh bench/dataplane/rounds.sh OUTDIR
#
# run.sh's knobs (RUNS, SECS, PINGS, TRACE) pass through. Writes
# OUTDIR/rN/ (one run.sh output each), OUTDIR/load.txt (uptime before and
# after each round) and prints a Markdown table of the medians.
set -u
here=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${ROUNDS:-3}
CONFIGS=${CONFIGS:-plain tunfwd ours-gcm-spin0 ours-gcm}
out=${1:?usage: rounds.sh OUTDIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
: >"$out/load.txt"
rev=""
for c in $CONFIGS; do rev="$c $rev"; done
r=1
while [ "$r" -le "$ROUNDS" ]; do
	if [ $((r % 2)) -eq 1 ]; then cf=$CONFIGS; else cf=$rev; fi
	echo "round $r before: $(date -u +%H:%M:%S) $(uptime | sed 's/.*load/load/')" >>"$out/load.txt"
	CONFIGS="$cf" sh "$here/run.sh" "$out/r$r" >"$out/r$r.log" 2>&1 ||
	    echo "rounds: round $r failed (see $out/r$r.log)" >&2
	echo "round $r after:  $(date -u +%H:%M:%S) $(uptime | sed 's/.*load/load/')" >>"$out/load.txt"
	r=$((r + 1))
done
# The medians: p50 over plain per round (plain of the same round).
echo "| configuration | ping p50 ms (rounds) | p50 over plain ms (rounds) | p90 ms | TCP Mbit/s | end points' CPU us per ping | legs (us, TRACE=1) |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for c in $CONFIGS; do
	for f in "$out"/r*/results.csv; do
		base=$(awk -F, '$1 == "plain" { print $6 }' "$f")
		awk -F, -v c="$c" -v b="$base" '$1 == c && $6 != "" {
			printf "%s %s %s %s %s\n", $6, (b == "" ? "-" : sprintf("%.3f", $6 - b)),
			    $7, $2, ($10 == "" ? "-" : $10) }' "$f"
	done >"$out/$c.rows"
	for f in "$out"/r*/hops.txt; do
		[ -f "$f" ] && grep "^$c pings" "$f"
	done >"$out/$c.legs"
	awk -v c="$c" '
	function med(k,   i, j, t, n, a) {
		n = 0; for (i = 1; i <= NR; i++) if (v[k, i] != "-") a[++n] = v[k, i] + 0
		for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
		return n ? a[int((n + 1) / 2)] : "-"
	}
	function all(k,   i, s) { s = ""; for (i = 1; i <= NR; i++) s = s (i > 1 ? "/" : "") v[k, i]; return s }
	{ for (k = 1; k <= 5; k++) v[k, NR] = $k }
	END { if (NR == 0) { printf "| %s | no result | | | | | |\n", c; exit }
		legs = ""
		while ((getline l < LEGS) > 0) { m++; n = split(l, f, " ")
			for (i = 4; i < n; i += 2) { name[i] = f[i]; lv[i, m] = f[i + 1] } }
		for (i = 4; i in name; i += 2) { k = 0
			for (j = 1; j <= m; j++) a[++k] = lv[i, j] + 0
			for (x = 2; x <= k; x++) { t = a[x]; for (y = x - 1; y >= 1 && a[y] > t; y--) a[y + 1] = a[y]; a[y + 1] = t }
			legs = legs sprintf("%s %g ", name[i], a[int((k + 1) / 2)]) }
		printf "| %s | %s (%s) | %s (%s) | %s | %s | %s | %s|\n", c, med(1), all(1),
		    med(2), all(2), med(3), med(4), med(5), (m ? legs : "- ") }' \
	    LEGS="$out/$c.legs" "$out/$c.rows"
done
cat "$out/load.txt"
