#!/bin/sh
# bench/ike/run.sh [N] [OUTDIR]: the paper's Tables I and II for this project.
#
# For each mode (psk, cert, qkd with the paper's and the prf QKD key
# schedule, qkd+dh) runs N NWu connections in a row
# (default 100; a fresh IKE SA each, closed with Delete) from ike-ue to a
# long-running ike-n3iwf on loopback, each side with its own kmsd from
# tests/testbed.sh (kmsd A for the N3IWF as SAE sae-a, kmsd B for the UE
# as sae-b). Prints Table I (median and SD of the UE's INIT, AUTH, CHILD SA
# phases and the total, plus the time in kmsd calls and in DH inside INIT)
# and Table II (frame sizes of each IKE message) next to the paper's
# figures, checks the issue's targets, and writes boxplots of the three
# phases per mode as PNG (gnuplot) and the raw CSVs to OUTDIR (default
# bench/ike/out). It also counts the QKD keys each variant took per
# connection at the key servers (kmsd A's enc_keys + kmsd B's dec_keys,
# from their /metrics).
#
# Environment: BINDIR (bin), MODES ("psk cert qkd-paper qkd-prf qkd+dh";
# qkd alone means qkd-paper), DH (14), CIPHER (aes-cbc), PROFILE (nwu).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
N=${1:-100}
OUT=${2:-$top/bench/ike/out}
BINDIR=${BINDIR:-bin}
case $BINDIR in /*) ;; *) BINDIR=$top/$BINDIR ;; esac
MODES=${MODES:-psk cert qkd-paper qkd-prf qkd+dh}
MODES=$(echo " $MODES " | sed 's/ qkd / qkd-paper /g; s/^ //; s/ $//')
DH=${DH:-14}
CIPHER=${CIPHER:-aes-cbc}
PROFILE=${PROFILE:-nwu}
export BINDIR

[ -x "$BINDIR/ike-ue" ] || { echo "bench/ike: $BINDIR/ike-ue not built (make)" >&2; exit 1; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TB=$(mktemp -d /tmp/ike-bench.XXXXXX)
N3PID=""
cleanup() {
	[ -n "$N3PID" ] && kill -TERM "$N3PID" 2>/dev/null || true
	sh "$top/tests/testbed.sh" down "$TB" >/dev/null 2>&1 || true
	rm -rf "$TB"
}
trap cleanup EXIT INT TERM
# Big enough pools: 13 keys per qkd connection.
POOL_HIGH=${POOL_HIGH:-4096} POOL_LOW=${POOL_LOW:-1024} \
    sh "$top/tests/testbed.sh" up "$TB" >"$TB/up.log" 2>&1 ||
	{ echo "bench/ike: testbed did not start: $(tail -n 3 "$TB/up.log")" >&2; exit 1; }
. "$TB/testbed.env"
rm -f "$OUT"/*.csv "$OUT"/*.dat "$OUT"/*.png "$OUT/keys.txt"

# served OPS ENDPOINT: kmsd's keys served so far at ENDPOINT (/metrics).
served() {
	curl -s --max-time 10 "$1/metrics" | awk -v m="kmsd_keys_served_total{endpoint=\"$2\"}" \
		'$1 == m { print $2; f = 1 } END { if (!f) print 0 }'
}
run_mode() {	# VARIANT: psk, cert, qkd-paper, qkd-prf, qkd+dh
	v=$1
	case $v in qkd-*) m=qkd; sched=${v#qkd-} ;; *) m=$v; sched=paper ;; esac
	ka=$(served "$KMSD_A_OPS" enc_keys); kb=$(served "$KMSD_B_OPS" dec_keys)
	pa=$(served "$KMSD_A_OPS" dec_keys); pb=$(served "$KMSD_B_OPS" enc_keys)
	rm -f "$TB/n3.ready"
	"$BINDIR/ike-n3iwf" --mode "$m" --qkd-schedule "$sched" --profile "$PROFILE" --dh "$DH" \
		--cipher "$CIPHER" --listen 127.0.0.1:0 --natt-port 0 \
		--ready-file "$TB/n3.ready" --psk bench-psk --max-conns "$N" \
		--cert "$SAE_A_CERT" --key "$SAE_A_KEY" --ca "$CA" \
		--kmsd-url "$KMSD_A_URL" --kmsd-cert "$SAE_A_CERT" \
		--kmsd-key "$SAE_A_KEY" --kmsd-ca "$CA" --peer-sae sae-b \
		--qkd-budget-src off --qkd-budget-sae off --qkd-budget-all off \
		--csv "$OUT/n3iwf.csv" --log-level warn 2>>"$OUT/n3iwf.log" &
	N3PID=$!
	i=0
	while [ ! -s "$TB/n3.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	port=$(sed -n 's/^port=//p' "$TB/n3.ready")
	"$BINDIR/ike-ue" --mode "$m" --qkd-schedule "$sched" --profile "$PROFILE" --dh "$DH" \
		--cipher "$CIPHER" --peer "127.0.0.1:$port" --psk bench-psk \
		--count "$N" --ca "$CA" --cert "$SAE_B_CERT" --key "$SAE_B_KEY" \
		--kmsd-url "$KMSD_B_URL" --kmsd-cert "$SAE_B_CERT" \
		--kmsd-key "$SAE_B_KEY" --kmsd-ca "$CA" --peer-sae sae-a \
		--csv "$OUT/ue.csv" --log-level warn 2>>"$OUT/ue.log" ||
		echo "bench/ike: $v: some connections failed (see $OUT/ue.log)" >&2
	i=0
	while kill -0 "$N3PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	kill -TERM "$N3PID" 2>/dev/null || true
	wait "$N3PID" || true
	N3PID=""
	# QKD keys at the key servers: the N3IWF's side (kmsd A) and the UE's
	# (kmsd B), whichever way round the mode calls them.
	echo "$v $(($(served "$KMSD_A_OPS" enc_keys) - ka + $(served "$KMSD_A_OPS" dec_keys) - pa)) $(($(served "$KMSD_B_OPS" dec_keys) - kb + $(served "$KMSD_B_OPS" enc_keys) - pb))" >>"$OUT/keys.txt"
}

for m in $MODES; do
	echo "bench/ike: $N connections in $m mode ($PROFILE, DH group $DH, $CIPHER)" >&2
	run_mode "$m"
done

# col VARIANT FIELD: the UE's values of CSV column FIELD (1-based) for
# VARIANT (the mode, "-" and the schedule column in qkd mode), ok rows.
col() { awk -F, -v m="$1" -v f="$2" '$1=="ue" && ($12=="-" ? $2 : $2 "-" $12)==m && $5==1 {print $f}' "$OUT/ue.csv"; }
# stats: "median sd n" of numbers on stdin
stats() {
	sort -g | awk '{v[NR]=$1; s+=$1; q+=$1*$1}
	END {
		if (NR == 0) { print "- - 0"; exit }
		med = NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2
		mean = s / NR; var = NR > 1 ? (q - NR*mean*mean) / (NR - 1) : 0
		if (var < 0) var = 0
		printf "%.3f %.3f %d\n", med, sqrt(var), NR
	}'
}
med() { col "$1" "$2" | stats | cut -d' ' -f1; }

echo
echo "TABLE I (this project): UE-side phase times in ms, median (SD), $N connections per mode"
printf '%-16s' "phase"
for m in $MODES; do printf '%-20s' "$m"; done
printf '| paper (mean/SD): PSK, cert, QKD\n'
for ph in "INIT:6:69.09/7.98 70.34/6.39 29.61/2.53" "  in kmsd:7:-" "  in DH:8:-" \
    "AUTH:9:475.81/78.49 477.51/74.30 467.02/58.32" \
    "CHILD SA:10:712.89/43.36 717.15/45.15 703.03/36.18" \
    "TOTAL:11:1257.79 1265 1199.66"; do
	name=${ph%%:*}; rest=${ph#*:}; f=${rest%%:*}; paper=${rest#*:}
	printf '%-16s' "$name"
	for m in $MODES; do
		set -- $(col "$m" "$f" | stats)
		printf '%-20s' "$1 ($2)"
	done
	printf '| %s\n' "$paper"
done
echo "(completed connections: $(for m in $MODES; do printf '%s %s  ' "$m" "$(col "$m" 5 | wc -l)"; done))"

echo
echo "TABLE II (this project): frame bytes (IKE + 8 UDP + 20 IPv4 + 14 Ethernet [+4 NAT-T]), UE's view, connection 1"
printf '%-34s' "message"
for m in $MODES; do printf '%-11s' "$m"; done
printf '| paper: PSK cert QKD\n'
paper="698 698 428|698 698 1099|214 1494 214|1446 1446 1446|182 182 182|166 166 166|150 150 150|150 150 150|182 182 182|118 118 118|150 118 150|278 246 278|286 486 230|470 470 198"
first=$(echo $MODES | cut -d' ' -f1)
# msgs MODE [cookie]: "row,frame_len" of the UE's connection 1; the qkd
# modes' COOKIE round trip (their first two IKE_SA_INIT) apart, so that rows
# line up with the paper's, which has no COOKIE.
msgs() {
	awk -F, -v m="$1" -v want="${2:-}" '$1=="ue" && ($11=="-" ? $2 : $2 "-" $11)==m && $4==1 {r[++n]=$0; if ($5=="IKE_SA_INIT") ni++}
	END {skip = ni == 4 ? 2 : 0
		for (i = 1; i <= n; i++) { split(r[i], f, ",")
			c = f[5] == "IKE_SA_INIT" && skip > 0; if (c) skip--
			if (c == (want != "")) print f[5] " MID=" f[6] " " f[7] " " f[8] "," f[10] }}' "$OUT/ue.msgs.csv"
}
msgs "$first" | cut -d, -f1 >"$TB/rows"
i=0
while read -r row; do
	i=$((i + 1))
	printf '%-34s' "$row"
	for m in $MODES; do
		v=$(msgs "$m" | sed -n "${i}p" | cut -d, -f2)
		printf '%-11s' "${v:--}"
	done
	printf '| %s\n' "$(echo "$paper" | cut -d'|' -f"$i")"
done <"$TB/rows"
printf '%-34s' "COOKIE round trip (qkd modes)"
for m in $MODES; do
	v=$(msgs "$m" cookie | cut -d, -f2 | tr '\n' '+' | sed 's/+$//')
	printf '%-11s' "${v:--}"
done
printf '| -\n'
printf '%-34s' "TOTAL"
for m in $MODES; do
	printf '%-11s' "$(awk -F, -v m="$m" '$1=="ue" && ($11=="-" ? $2 : $2 "-" $11)==m && $4==1 {s+=$10} END {print s+0}' "$OUT/ue.msgs.csv")"
done
printf '| 5388 6604 4991\n'

echo
echo "QKD KEYS per connection, counted at the key servers (kmsd A: the N3IWF's calls, kmsd B: the UE's), 256 bits each"
printf '%-12s%-10s%-10s%-14s%s\n' variant "kmsd A" "kmsd B" "bits/conn" \
    "new conns/s a QKD link sustains at 1, 10, 100 kbit/s, 1 Mbit/s (qkd-sim's default key_rate)"
while read -r v a b; do
	awk -v v="$v" -v a="$a" -v b="$b" -v n="$N" 'BEGIN {
		ka = a / n; kb = b / n; bits = ka * 256
		if (bits > 0) r = sprintf("%.2f, %.1f, %.0f, %.0f", 1e3 / bits, 1e4 / bits, 1e5 / bits, 1e6 / bits)
		else r = "-"
		printf "%-12s%-10s%-10s%-14s%s\n", v, ka, kb, bits, r }'
done <"$OUT/keys.txt"

echo
echo "TARGETS"
qi=$(med qkd-paper 6); di=$(med psk 6); qt=$(med qkd-paper 11)
rs=$(awk -F, '$1=="ue" && $2=="qkd" && $11=="paper" && $4==1 && $5=="IKE_SA_INIT" && $8=="resp" {v=$9} END {print v}' "$OUT/ue.msgs.csv")
verdict() { if [ "$1" = 1 ]; then echo PASS; else echo FAIL; fi; }
if [ -n "$qi" ] && [ "$qi" != - ] && [ -n "$di" ] && [ "$di" != - ]; then
	echo "QKD INIT median $qi ms <= half of DH (MODP-2048, psk) INIT median $di ms: $(verdict "$(awk -v a="$qi" -v b="$di" 'BEGIN {print (a <= b / 2)}')")"
fi
[ -n "$rs" ] && echo "IKE_SA_INIT response with 13 key IDs: $rs bytes of IKE message <= 600: $(verdict "$(awk -v a="$rs" 'BEGIN {print (a <= 600)}')")"
[ -n "$qt" ] && [ "$qt" != - ] && echo "whole NWu connection (qkd, paper schedule) median $qt ms < 20 ms: $(verdict "$(awk -v a="$qt" 'BEGIN {print (a < 20)}')")"
for m in $MODES; do
	t=$(med "$m" 11)
	echo "  total median $m: $t ms"
done

# Boxplots: one PNG per phase, one box per mode.
if command -v gnuplot >/dev/null 2>&1; then
	for ph in init:6 auth:9 child:10; do
		name=${ph%%:*}; f=${ph#*:}
		j=0; plot=""
		for m in $MODES; do
			j=$((j + 1))
			col "$m" "$f" >"$OUT/$name-$m.dat"
			plot="$plot${plot:+, }'$OUT/$name-$m.dat' using ($j):1 title '$m'"
		done
		xt=$(j=0; for m in $MODES; do j=$((j + 1)); printf '%s"%s" %d' "${j#1}" "$m" "$j" | sed 's/^[0-9]/, /'; done)
		gnuplot <<EOG 2>>"$OUT/gnuplot.log" || echo "bench/ike: gnuplot failed for $name" >&2
set terminal pngcairo size 800,500 noenhanced
set output '$OUT/phase-$name.png'
set style fill solid 0.3 border -1
set style boxplot outliers pointtype 6
set style data boxplot
set boxwidth 0.5
set title "IKE $name phase per mode ($N NWu connections, UE side)"
set ylabel 'ms'
set xtics ($xt)
set xrange [0.3:$j.7]
set key off
set grid ytics
plot $plot
EOG
	done
	echo
	echo "plots: $OUT/phase-init.png $OUT/phase-auth.png $OUT/phase-child.png"
else
	echo "bench/ike: gnuplot not installed (apt-get install gnuplot-nox): no plots" >&2
fi
echo "raw data: $OUT/ue.csv $OUT/ue.msgs.csv $OUT/n3iwf.csv $OUT/n3iwf.msgs.csv"
