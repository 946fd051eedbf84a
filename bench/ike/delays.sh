#!/bin/sh
# bench/ike/delays.sh [N] [OUTDIR]: Table I over emulated network delays
# (issue 11). For each setting "NWU_RTT/KMS_RTT" (ms) of SETTINGS (default
# "30/2 30/0 5/2 5/0 0/2 0/0": the 0 ms NWu cases last, being the ones a
# busy machine disturbs most; "loopback" runs without the relays, for
# the relays' own cost) runs bench/ike/run.sh N OUTDIR/nwuX-kmsY/runR
# RUNS times (3) with NWU_RTT and KMS_RTT set, so every mode goes through
# build/tools/delayrelay (run.sh says how), then prints the report: per
# setting and variant the mean (SD) and median of INIT and TOTAL over the
# RUNS x (N - 1) connections, the mean TOTAL of each run, and a summary
# with each QKD variant's difference to psk (the DH mode). Connection 0 of
# every run is left out: it pays the processes' first-use costs (OpenSSL
# and TLS set-up, page faults: 10-25 ms here whatever the delay).
#   REPORT=1: only print the report of the runs already in OUTDIR.
#   MODES, BINDIR, DH, CIPHER, NWU_JITTER, KMS_JITTER: passed to run.sh.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-30}
OUT=${2:-$top/bench/ike/out-delays}
SETTINGS=${SETTINGS:-30/2 30/0 5/2 5/0 0/2 0/0}
RUNS=${RUNS:-3}
MODES=${MODES:-psk cert qkd-paper qkd-prf qkd+dh}
export MODES
mkdir -p "$OUT"

# setdir SETTING: its folder under OUTDIR
setdir() { if [ "$1" = loopback ]; then echo loopback; else echo "nwu${1%/*}-kms${1#*/}"; fi; }

if [ -z "${REPORT:-}" ]; then
	for s in $SETTINGS; do
		r=1
		while [ $r -le "$RUNS" ]; do
			d=$OUT/$(setdir "$s")/run$r
			mkdir -p "$d"
			t0=$(date -u +%H:%M:%S); l0=$(cut -d' ' -f1 /proc/loadavg)
			echo "bench/ike/delays: setting $s (NWu/KMS RTT ms), run $r ($t0 UTC, load $l0)" >&2
			if [ "$s" = loopback ]; then
				sh "$top/bench/ike/run.sh" "$N" "$d" >"$d/run.txt" 2>&1
			else
				NWU_RTT=${s%/*} KMS_RTT=${s#*/} sh "$top/bench/ike/run.sh" "$N" "$d" >"$d/run.txt" 2>&1
			fi ||
				{ echo "bench/ike/delays: run.sh failed, see $d/run.txt" >&2; exit 1; }
			echo "start $t0 load $l0 sched $(chrt -p $$ 2>/dev/null | sed -n 's/.*policy: SCHED_//p' | tr 'A-Z' 'a-z')/$(chrt -p $$ 2>/dev/null | sed -n 's/.*priority: //p') end $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg) n $N tree $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo -)" >"$d/meta"
			r=$((r + 1))
		done
	done
fi

# vals DIR VARIANT FIELD: the UE's values of CSV column FIELD of VARIANT,
# completed connections 1.. of every run in DIR.
vals() {
	for f in "$1"/run*/ue.csv; do
		awk -F, -v m="$2" -v f="$3" '$1=="ue" && ($12=="-" ? $2 : $2 "-" $12)==m && $5==1 && $4 >= 1 {print $f}' "$f"
	done
}
. "$top/bench/ike/lib.sh"
# runmeans DIR VARIANT: mean TOTAL of each run, "a / b / c"
runmeans() {
	for f in "$1"/run*/ue.csv; do
		awk -F, -v m="$2" '$1=="ue" && ($12=="-" ? $2 : $2 "-" $12)==m && $5==1 && $4 >= 1 {s+=$11; n++}
		END {printf "%s", n ? sprintf("%.3f", s/n) : "-"}' "$f"
		printf ' / '
	done | sed 's| / $||'
}

echo "# Table I through delayrelay: UE-side ms, mean (SD) and median over runs x connections 1..N-1"
summary=""
for s in $SETTINGS; do
	dir=$OUT/$(setdir "$s")
	[ -d "$dir" ] || continue
	echo
	if [ "$s" = loopback ]; then
		echo "Loopback, no relay ($(ls -d "$dir"/run* | wc -l) runs):"
	else
		echo "NWu RTT ${s%/*} ms, KMS RTT ${s#*/} ms ($(ls -d "$dir"/run* | wc -l) runs):"
	fi
	for m in "$dir"/run*/meta; do
		[ -f "$m" ] && echo "  $(basename "$(dirname "$m")"): $(cat "$m")"
	done
	echo
	echo "| variant | INIT mean (SD) | INIT median | in kmsd mean | AUTH mean | TOTAL mean (SD) | TOTAL median | TOTAL mean of run 1 / 2 / 3 | connections |"
	echo "|---|---|---|---|---|---|---|---|---|"
	row="| $(echo "$s" | sed 's|/| / |') |"
	means=""
	for v in $MODES; do
		set -- $(vals "$dir" "$v" 6 | stats)
		im=$4 isd=$2 imed=$1
		k=$(vals "$dir" "$v" 7 | stats | cut -d' ' -f4)
		a=$(vals "$dir" "$v" 9 | stats | cut -d' ' -f4)
		set -- $(vals "$dir" "$v" 11 | stats)	# median sd n mean
		echo "| $v | $im ($isd) | $imed | $k | $a | $4 ($2) | $1 | $(runmeans "$dir" "$v") | $3 |"
		row="$row $4 ($2) |"
		means="$means $v=$4"
	done
	# each QKD variant's TOTAL minus psk's (DH): < 0 means QKD is faster
	row="$row$(echo "$means" | awk '{ for (i = 1; i <= NF; i++) { split($i, a, "="); t[a[1]] = a[2] }
		for (i = 1; i <= NF; i++) { split($i, a, "=")
			if (a[1] ~ /^qkd/ && t["psk"] != "" && t[a[1]] != "-") printf " %+.2f |", t[a[1]] - t["psk"] } }')"
	summary="$summary$row
"
done
echo
echo "Summary: TOTAL mean (SD) in ms per setting (NWu RTT / KMS RTT)"
echo
printf '| NWu / KMS RTT ms |'
for v in $MODES; do printf ' %s |' "$v"; done
for v in $MODES; do case $v in qkd*) printf ' %s - psk |' "$v" ;; esac; done
echo
printf '|---|'
for v in $MODES; do printf -- '---|'; case $v in qkd*) printf -- '---|' ;; esac; done
echo
printf '%s' "$summary"
