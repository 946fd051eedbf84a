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
#
# Emulated network (issue 11; bench/README.md): NWU_RTT and KMS_RTT, round
# trip times in ms (decimals allowed), put build/tools/delayrelay with a
# one-way delay of RTT/2 each way between the UE and the N3IWF (UDP, both
# the IKE and the NAT-T port: UE -> relay -> N3IWF) and between each IKE
# endpoint and its kmsd (TCP: the ETSI 014 API over TLS). NWU_JITTER and
# KMS_JITTER (ms, 0) add the relay's uniform jitter to each one-way delay.
# BUILD (build) says where tools/delayrelay is.
# QKD_COOKIE=no turns off the N3IWF's COOKIE demand in the qkd modes
# (--qkd-cookie; default yes, as deployed), to measure what it costs.
# Either RTT set (0 included) routes every mode through the relays; both
# unset: straight over loopback as before. Through the relay the N3IWF
# sees the relay's source ports, not the UE's: NAT detection finds a NAT
# (as behind a Wi-Fi router) and the UE moves to the NAT-T port after
# IKE_SA_INIT, so IKE_AUTH onwards carries the 4-byte non-ESP marker.
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
NWU_RTT=${NWU_RTT:-}
KMS_RTT=${KMS_RTT:-}
RELAY=$top/${BUILD:-build}/tools/delayrelay
relay_on() { [ -n "$NWU_RTT$KMS_RTT" ]; }
export BINDIR

[ -x "$BINDIR/ike-ue" ] || { echo "bench/ike: $BINDIR/ike-ue not built (make)" >&2; exit 1; }
if relay_on; then
	[ -x "$RELAY" ] || { echo "bench/ike: $RELAY not built (make)" >&2; exit 1; }
	# half_ms RTT NAME: the one-way delay of a round trip time in ms
	half_ms() {
		awk -v v="$1" -v n="$2" 'BEGIN { if (v !~ /^[0-9]+(\.[0-9]+)?$/) {
			printf "bench/ike: %s \"%s\" is not a round trip time in ms\n", n, v > "/dev/stderr"; exit 1 }
			printf "%g", v / 2 }'
	}
	NWU_D=$(half_ms "${NWU_RTT:-0}" NWU_RTT)
	KMS_D=$(half_ms "${KMS_RTT:-0}" KMS_RTT)
	NWU_J=$(half_ms "$(awk -v j="${NWU_JITTER:-0}" 'BEGIN { print j * 2 }')" NWU_JITTER)
	KMS_J=$(half_ms "$(awk -v j="${KMS_JITTER:-0}" 'BEGIN { print j * 2 }')" KMS_JITTER)
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TB=$(mktemp -d /tmp/ike-bench.XXXXXX)
N3PID=""
KRPID=""
NRPID=""
cleanup() {
	[ -n "$N3PID" ] && kill -TERM "$N3PID" 2>/dev/null || true
	[ -n "$NRPID" ] && kill -TERM "$NRPID" 2>/dev/null || true
	[ -n "$KRPID" ] && kill -TERM "$KRPID" 2>/dev/null || true
	sh "$top/tests/testbed.sh" down "$TB" >/dev/null 2>&1 || true
	rm -rf "$TB"
}
trap cleanup EXIT INT TERM
# Big enough pools: 13 keys per qkd connection.
POOL_HIGH=${POOL_HIGH:-4096} POOL_LOW=${POOL_LOW:-1024} \
    sh "$top/tests/testbed.sh" up "$TB" >"$TB/up.log" 2>&1 ||
	{ echo "bench/ike: testbed did not start: $(tail -n 3 "$TB/up.log")" >&2; exit 1; }
. "$TB/testbed.env"
rm -f "$OUT"/*.csv "$OUT"/*.dat "$OUT"/*.png "$OUT/keys.txt" "$OUT/relay.log"

# relay_start NAME DELAY JITTER RULE...: starts delayrelay in the
# background (pid in RELAY_PID, counters appended to OUT/relay.log when it
# stops) and waits for its ready file: "proto listen target" per rule.
relay_start() {
	_n=$1; _d=$2; _j=$3; shift 3
	rm -f "$TB/$_n.ready"
	echo "== $_n: delay $_d ms jitter $_j ms one way" >>"$OUT/relay.log"
	"$RELAY" -d "$_d" -j "$_j" --ready "$TB/$_n.ready" "$@" 2>>"$OUT/relay.log" &
	RELAY_PID=$!
	_i=0
	while [ ! -s "$TB/$_n.ready" ] && [ $_i -lt 100 ]; do sleep 0.05; _i=$((_i + 1)); done
	[ -s "$TB/$_n.ready" ] || { echo "bench/ike: $_n relay did not start (see $OUT/relay.log)" >&2; exit 1; }
}
# relay_port NAME LINE: the port the relay listens on for rule LINE
relay_port() { sed -n "${2}p" "$TB/$1.ready" | awk '{ n = split($2, a, ":"); print a[n] }'; }
relay_stop() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# The LAN to the KMS: each endpoint's kmsd behind its own TCP rule.
if relay_on; then
	relay_start kms "$KMS_D" "$KMS_J" -t "127.0.0.1:0=${KMSD_A_URL#https://}" \
	    -t "127.0.0.1:0=${KMSD_B_URL#https://}"
	KRPID=$RELAY_PID
	KMSD_A_URL=https://127.0.0.1:$(relay_port kms 1)
	KMSD_B_URL=https://127.0.0.1:$(relay_port kms 2)
fi

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
		--qkd-cookie "${QKD_COOKIE:-yes}" \
		--csv "$OUT/n3iwf.csv" --log-level warn 2>>"$OUT/n3iwf.log" &
	N3PID=$!
	i=0
	while [ ! -s "$TB/n3.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	port=$(sed -n 's/^port=//p' "$TB/n3.ready")
	nport=$(sed -n 's/^natt_port=//p' "$TB/n3.ready")
	if relay_on; then	# the NWu link: IKE and NAT-T ports
		relay_start nwu "$NWU_D" "$NWU_J" -u "127.0.0.1:0=127.0.0.1:$port" \
		    -u "127.0.0.1:0=127.0.0.1:$nport"
		NRPID=$RELAY_PID
		port=$(relay_port nwu 1)
		nport=$(relay_port nwu 2)
	fi
	"$BINDIR/ike-ue" --mode "$m" --qkd-schedule "$sched" --profile "$PROFILE" --dh "$DH" \
		--cipher "$CIPHER" --peer "127.0.0.1:$port" --natt-port "$nport" --psk bench-psk \
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
	if [ -n "$NRPID" ]; then relay_stop "$NRPID"; NRPID=""; fi
	# QKD keys at the key servers: the N3IWF's side (kmsd A) and the UE's
	# (kmsd B), whichever way round the mode calls them.
	echo "$v $(($(served "$KMSD_A_OPS" enc_keys) - ka + $(served "$KMSD_A_OPS" dec_keys) - pa)) $(($(served "$KMSD_B_OPS" dec_keys) - kb + $(served "$KMSD_B_OPS" enc_keys) - pb))" >>"$OUT/keys.txt"
}

net="loopback"
relay_on && net="NWu RTT ${NWU_RTT:-0} ms (jitter +-${NWU_JITTER:-0}), KMS RTT ${KMS_RTT:-0} ms (jitter +-${KMS_JITTER:-0}) through delayrelay"
for m in $MODES; do
	echo "bench/ike: $N connections in $m mode ($PROFILE, DH group $DH, $CIPHER, $net)" >&2
	run_mode "$m"
done
if [ -n "$KRPID" ]; then relay_stop "$KRPID"; KRPID=""; fi

# col VARIANT FIELD: the UE's values of CSV column FIELD (1-based) for
# VARIANT (the mode, "-" and the schedule column in qkd mode), ok rows.
col() { awk -F, -v m="$1" -v f="$2" '$1=="ue" && ($12=="-" ? $2 : $2 "-" $12)==m && $5==1 {print $f}' "$OUT/ue.csv"; }
. "$top/bench/ike/lib.sh"
med() { col "$1" "$2" | stats | cut -d' ' -f1; }

echo
echo "TABLE I (this project): UE-side phase times in ms, median (SD), $N connections per mode, $net"
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
