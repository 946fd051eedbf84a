#!/bin/sh
# bench/load/run.sh: many UEs (issue 12). Established NWu connections per
# second and p50/p99 set-up time against offered load, memory per held UE,
# QKD keys per connection and CPU per connection at the responder, for our
# ike-n3iwf in every mode and, side by side in the same run, strongSwan's
# charon as responder in the rfc7296 profile; ike-ue's load mode
# (`--load`, LOADSPEC in ike/README.md) plays the UEs for both.
#
#   sh bench/load/run.sh [--quick] [--out DIR] [--ues "1000 10000"]
#       [--variants "..."] [--rounds N] [--step-rounds N]
#       [--steps "0.25 0.5 0.75"] [--rates "R1 R2"] [--hold S] [--conc C]
#
# A cell = one variant, H UEs, one offered load: a FRESH responder (its
# memory baseline), then one ike-ue with `--load H --load-hold H
# --load-rate R --hold S`: H UEs arrive at R per second (0: as fast as
# --load-conc set-ups in flight allow, the saturation point), each its own
# SUPI, keys and UDP source port, and stay up; S seconds after the last one
# is established all of them Delete. Measured per cell:
#   conn/s    ike-ue's rate: established / (first IKE_SA_INIT .. last
#             establishment)
#   p50, p99  set-up time of one UE (first IKE_SA_INIT sent .. established)
#   failed    UEs not established
#   keys/conn QKD keys served per established UE, counted at the key
#             servers: kmsd A (the N3IWF's; enc_keys + dec_keys) and kmsd B
#             (the UEs'), from their /metrics
#   KiB/UE    (highest VmRSS of the responder, sampled every 0.1 s, - its
#             VmRSS before the first UE) / UEs held at most
#   CPU ms/conn  the responder's utime + stime (/proc/PID/stat, all
#             threads) from before the first UE to after the last Delete,
#             / established: set-up and Delete of one UE
#   UE CPU    the same for the ike-ue process playing the UEs (the shell's
#             `times` around it): the load generator shares the 2 cores
#   KMS CPU   the same for the test bed's KMEs and kmsd (both sites)
# Rates: each variant first runs at --load-rate 0 (saturation) ROUNDS
# times (rounds interleaved across the variants); then --steps fractions of
# its median saturated rate (or --rates: the same absolute rates for every
# variant), STEP_ROUNDS times each. The table shows each cell's median over
# its rounds (failures summed).
#
# Variants (--variants; our N3IWF in MODE:PROFILE, and charon):
#   psk:nwu cert:nwu qkd:nwu qkd+dh:nwu  every mode, 3GPP NWu (EAP-5G, two
#                         Child SAs); qkd is the paper's 13-key schedule
#   psk:rfc7296 qkd:rfc7296    one IKE_AUTH with one Child SA, as charon
#   charon                strongSwan 5.9.8 charon, PSK, rfc7296 (config:
#                         bench/load/strongswan.conf.in, psk-responder.conf.in)
# All use DH group 14 (MODP-2048) where there is a DH, AES-CBC-256 +
# HMAC-SHA2-256-128, lifetimes of a day (no rekey in a cell), the N3IWF's
# QKD key budgets off (every UE comes from 127.0.0.1) and its COOKIE
# threshold high (1,000,000 half-open); the qkd modes still demand their
# COOKIE (--qkd-cookie yes, as deployed). Our N3IWF and the UEs run on
# 127.0.0.1 of this namespace with the kmsd test bed (tests/testbed.sh);
# charon runs in a network namespace of its own (its kernel-libipsec TUN
# device stays there) and its UEs on that namespace's 127.0.0.1.
#
# --quick: 200 UEs, 1 round, one step at half the saturated rate, 1 s
# hold (a smoke run: tests/integ/test_bench_load.sh). Default: UES "1000
# 10000"; up to 1,000 UEs: ROUNDS 3 saturated, STEPS "0.25 0.5 0.75" once
# (STEP_ROUNDS 1); above 1,000 UEs: ROUNDS_BIG 1 saturated, STEPS_BIG ""
# (none: a 10,000-UE step at a quarter of the rate takes minutes per
# variant); HOLD 3; CONC 16 (--load-conc: ike-ue's blocking workers, one
# thread per set-up in flight; at 64 on these 2 cores they cost the UE side
# 2-2.5x the CPU per connection of 8-32 and took the cores from the
# responder; 16 still keeps every responder busy).
# Environment: BINDIR (bin), the same names as the flags in capitals,
# CELL_LIMIT (300): seconds a cell may take (then cut, see ue_run).
#
# Output: OUT (default bench/load/out)/raw.csv (one row per cell and
# round), summary.csv (medians) and table.txt (what is printed); logs of
# every responder and ike-ue run in OUT/logs. Needs root (charon's
# namespace, more open files for the UEs' sockets) and strongSwan (mk/deps.sh).
# Not under chrt: a run that saturates both cores for minutes under
# SCHED_FIFO would take the machine from everything else.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/bench/load/lib.sh"
. "$top/bench/ike/lib.sh"	# stats

usage() { sed -n '2,/^set -eu/{/^#/s/^# \{0,1\}//p}' "$0"; exit "${1:-2}"; }
die() { echo "bench/load: $*" >&2; exit 1; }

QUICK=""
OUT=${OUT:-$top/bench/load/out}
UES=${UES:-}
VARIANTS=${VARIANTS:-psk:nwu cert:nwu qkd:nwu qkd+dh:nwu psk:rfc7296 qkd:rfc7296 charon}
ROUNDS=${ROUNDS:-}
ROUNDS_BIG=${ROUNDS_BIG:-1}
STEPS_SET=${STEPS+1}	# set (even empty): no default steps
STEPS=${STEPS:-}
STEPS_BIG=${STEPS_BIG-}
STEP_ROUNDS=${STEP_ROUNDS:-1}
RATES=${RATES:-}
HOLD=${HOLD:-}
CELL_LIMIT=${CELL_LIMIT:-300}
CONC=${CONC:-16}
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--out|--ues|--variants|--rounds|--step-rounds|--steps|--rates|--hold|--conc)
		[ $# -ge 2 ] || die "$1 needs a value"
		case $1 in
		--out) OUT=$2 ;; --ues) UES=$2 ;; --variants) VARIANTS=$2 ;;
		--rounds) ROUNDS=$2 ;; --step-rounds) STEP_ROUNDS=$2 ;;
		--steps) STEPS=$2; STEPS_SET=1 ;; --rates) RATES=$2 ;;
		--hold) HOLD=$2 ;; --conc) CONC=$2 ;;
		esac
		shift ;;
	-h|--help) usage 0 ;;
	*) echo "bench/load: unknown argument \"$1\"" >&2; usage ;;
	esac
	shift
done
if [ -n "$QUICK" ]; then
	UES=${UES:-200}; ROUNDS=${ROUNDS:-1}; HOLD=${HOLD:-1}
	[ -n "$STEPS_SET" ] || STEPS=0.5
	STEPS_BIG=$STEPS
else
	UES=${UES:-1000 10000}; ROUNDS=${ROUNDS:-3}
	[ -n "$STEPS_SET" ] || STEPS="0.25 0.5 0.75"
	HOLD=${HOLD:-3}
fi
for v in $UES $ROUNDS $ROUNDS_BIG $STEP_ROUNDS $HOLD $CONC $CELL_LIMIT; do
	case $v in ''|*[!0-9]*) die "\"$v\" is not a whole number" ;; esac
done
for v in $STEPS $STEPS_BIG $RATES; do
	case $v in ''|*[!0-9.]*) die "\"$v\" is not a rate or a fraction" ;; esac
done
for v in $VARIANTS; do
	case $v in
	psk:nwu|cert:nwu|qkd:nwu|qkd+dh:nwu|psk:rfc7296|cert:rfc7296|qkd:rfc7296|qkd+dh:rfc7296|charon) ;;
	*) die "unknown variant \"$v\" (MODE:PROFILE or charon)" ;;
	esac
done

BINDIR=${BINDIR:-bin}
case $BINDIR in /*) ;; *) BINDIR=$top/$BINDIR ;; esac
for b in ike-ue ike-n3iwf qkd-sim kmsd; do
	[ -x "$BINDIR/$b" ] || die "$BINDIR/$b not built (make)"
done
"$BINDIR/ike-ue" --help 2>&1 | grep -q -- '--load-rate' ||
    die "$BINDIR/ike-ue has no load mode (--load, --load-rate)"
[ "$(id -u)" = 0 ] || die "needs root (charon's network namespace; open files)"
# One socket per UE, and a few for everything else.
maxues=$(echo "$UES" | tr ' ' '\n' | sort -n | tail -n 1)
ulimit -n $((maxues + 4096)) 2>/dev/null ||
    die "cannot raise the open-file limit to $((maxues + 4096)) (ulimit -n)"

mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
LOGS=$OUT/logs
TB=$(mktemp -d /tmp/load-bench.XXXXXX)
PSK=bench-load-psk
SEED=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
SUPI0=208930000100000
RESP_PID=""
LB_SAMPLER=""
cleanup() {
	set +e
	[ -n "$LB_SAMPLER" ] && lb_sampler_stop
	[ -n "$RESP_PID" ] && kill -TERM "$RESP_PID" 2>/dev/null || true
	lc_cleanup
	sh "$top/tests/testbed.sh" down "$TB" >/dev/null 2>&1 || true
	rm -rf "$TB"
}
. "$top/bench/load/charon.sh"
trap cleanup EXIT
trap 'exit 1' INT TERM

# The key servers: KMEs that make keys far faster than any cell takes them
# and store what the largest run of qkd cells needs, kmsd A's pool deep
# enough that the N3IWF's enc_keys are served from it.
need=$((maxues * 13 * 4))
export KEY_RATE=${KEY_RATE:-400000000}
export MAX_KEY_COUNT=${MAX_KEY_COUNT:-$((need + 200000))}
export MAX_KEYS_PER_PAIR=$MAX_KEY_COUNT
export MAX_KEY_PER_REQUEST=1024
export POOL_HIGH=${POOL_HIGH:-$((maxues * 13 + 20000))}
export POOL_LOW=${POOL_LOW:-$((maxues * 13 / 2 + 1000))}
export POOL_BATCH=1024 POOL_LEASE=1024 LOG_LEVEL=warn
echo "bench/load: starting the test bed (qkd-sim pair, kmsd A and B)" >&2
sh "$top/tests/testbed.sh" up "$TB" >"$LOGS/testbed.log" 2>&1 ||
    die "test bed did not start: $(tail -n 3 "$LOGS/testbed.log")"
. "$TB/testbed.env"
case " $VARIANTS " in *" charon "*) lc_setup "$TB/charon" || die "charon: see $LOGS/charon-*.log" ;; esac

# --- one cell --------------------------------------------------------------
# n3iwf_start MODE PROFILE H LOG: a fresh ike-n3iwf on 127.0.0.1 (ports from
# the kernel) for H subscribers; RESP_PID, RESP_PORT, RESP_NATT.
n3iwf_start() {
	rm -f "$TB/n3.ready"
	"$BINDIR/ike-n3iwf" --mode "$1" --profile "$2" --dh 14 --cipher aes-cbc \
	    --listen 127.0.0.1:0 --natt-port 0 --ready-file "$TB/n3.ready" \
	    --psk "$PSK" --cert "$SAE_A_CERT" --key "$SAE_A_KEY" --ca "$CA" \
	    --kmsd-url "$KMSD_A_URL" --kmsd-cert "$SAE_A_CERT" \
	    --kmsd-key "$SAE_A_KEY" --kmsd-ca "$CA" --peer-sae sae-b \
	    --subscribers "$3" --supi-first "$SUPI0" --sub-seed "$SEED" \
	    --qkd-budget-src off --qkd-budget-sae off --qkd-budget-all off \
	    --cookie-threshold 1000000 --ike-soft 86400 --child-soft 86400 \
	    --log-level warn ${N3IWF_ARGS:-} >"$4" 2>&1 &
	RESP_PID=$!
	i=0
	while [ ! -s "$TB/n3.ready" ]; do
		lb_alive "$RESP_PID" && [ $i -lt 200 ] || return 1
		sleep 0.05; i=$((i + 1))
	done
	RESP_PORT=$(sed -n 's/^port=//p' "$TB/n3.ready")
	RESP_NATT=$(sed -n 's/^natt_port=//p' "$TB/n3.ready")
}
resp_stop() {
	[ -n "$RESP_PID" ] || return 0
	kill -TERM "$RESP_PID" 2>/dev/null || true
	lb_wait_gone "$RESP_PID" 30 || kill -KILL "$RESP_PID" 2>/dev/null || true
	wait "$RESP_PID" 2>/dev/null || true
	RESP_PID=""
}

# ue_run MODE PROFILE H RATE PEER NATT LOG [PREFIX...]: ike-ue's load mode
# (under PREFIX, e.g. ip netns exec NS); SUMMARY = its "load:" line. A run
# past CELL_LIMIT seconds (or twice its arrival time) is cut: SUMMARY then
# says how many UEs the responder holds (resp_held), over the time so far,
# and no set-up times; ike-ue gets SIGTERM (its Deletes), SIGKILL 15 s later.
ue_run() {
	_m=$1; _p=$2; _h=$3; _r=$4; _peer=$5; _natt=$6; _log=$7
	shift 7
	_lim=$(awk -v h="$_h" -v r="$_r" -v s="$HOLD" -v c="$CELL_LIMIT" 'BEGIN {
		l = (r > 0 ? 2 * h / r : h / 5) + s + 60; printf "%d", l < c ? l : c }')
	_t0=$(date +%s)
	"$@" "$BINDIR/ike-ue" --mode "$_m" --profile "$_p" \
	    --dh 14 --cipher aes-cbc --peer "$_peer" --natt-port "$_natt" \
	    --psk "$PSK" --ca "$CA" --cert "$SAE_B_CERT" --key "$SAE_B_KEY" \
	    --kmsd-url "$KMSD_B_URL" --kmsd-cert "$SAE_B_CERT" \
	    --kmsd-key "$SAE_B_KEY" --kmsd-ca "$CA" --peer-sae sae-a \
	    --load "$_h" --load-rate "$_r" --load-conc "$CONC" --load-hold "$_h" \
	    --hold "$HOLD" --supi-first "$SUPI0" --sub-seed "$SEED" \
	    --ike-soft 86400 --child-soft 86400 --log-level warn \
	    ${UE_ARGS:-} >"$_log.out" 2>"$_log" &
	_pid=$!
	while lb_alive "$_pid" && [ $(($(date +%s) - _t0)) -lt "$_lim" ]; do sleep 0.2; done
	if lb_alive "$_pid"; then
		_el=$(($(date +%s) - _t0)); _e=$(resp_held "$CUR_V")
		echo "bench/load: cut after $_el s (CELL_LIMIT $CELL_LIMIT): the responder holds ${_e:-?} UEs" >&2
		kill -TERM "$_pid" 2>/dev/null || true
		lb_wait_gone "$_pid" 15 || kill -KILL "$_pid" 2>/dev/null || true
		wait "$_pid" 2>/dev/null || true
		SUMMARY="load: ues=$_h established=${_e:--} failed=$((_h - ${_e:-0})) elapsed_s=$_el rate=$(awk -v e="${_e:-0}" -v t="$_el" 'BEGIN { printf "%.1f", e / t }')/s cut=1"
		return
	fi
	wait "$_pid" 2>/dev/null || true
	SUMMARY=$(grep -m 1 '^load:' "$_log.out" || true)
}
# resp_held VARIANT: established IKE SAs the responder holds now (charon:
# swanctl --stats, total - half-open; ours: empty, not asked).
resp_held() {
	[ "$1" = charon ] || return 0
	lc_held
}

# cell VARIANT H RATE ROUND: one measurement; appends a row to raw.csv.
cell() {
	_v=$1; _h=$2; _r=$3; _k=$4; CUR_V=$1
	_tag=$(echo "$_v-$_h-$_r-$_k" | tr ':+' '_p')
	_ld0=$(cut -d' ' -f1 /proc/loadavg)
	_ka=$(lb_keys "$KMSD_A_OPS"); _kb=$(lb_keys "$KMSD_B_OPS")
	if [ "$_v" = charon ]; then
		lc_start "$LOGS/charon-$_tag.log" || die "charon did not start: see $LOGS/charon-$_tag.log"
		_m=psk; _p=rfc7296
	else
		_m=${_v%%:*}; _p=${_v#*:}
		n3iwf_start "$_m" "$_p" "$_h" "$LOGS/n3iwf-$_tag.log" ||
		    die "ike-n3iwf ($_v) did not start: $(tail -n 3 "$LOGS/n3iwf-$_tag.log")"
	fi
	sleep 0.3
	_rss0=$(lb_rss_kb "$RESP_PID"); _cpu0=$(lb_cpu_ticks "$RESP_PID")
	lb_sampler_start "$RESP_PID" "$TB/rss.max"
	echo "$_rss0" >"$TB/rss.max"
	lb_children_ms "$TB/times"; _ue0=$LB_CHILD_MS; _kc0=$(lb_tb_ticks "$TB")
	if [ "$_v" = charon ]; then
		ue_run psk rfc7296 "$_h" "$_r" 127.0.0.1:500 4500 "$LOGS/ue-$_tag.log" $LC_RUN
	else
		ue_run "$_m" "$_p" "$_h" "$_r" "127.0.0.1:$RESP_PORT" "$RESP_NATT" "$LOGS/ue-$_tag.log"
	fi
	_cpu1=$(lb_cpu_ticks "$RESP_PID")
	lb_children_ms "$TB/times"; _ue1=$LB_CHILD_MS; _kc1=$(lb_tb_ticks "$TB")
	lb_sampler_stop; LB_SAMPLER=""
	_rss1=$(cat "$TB/rss.max")
	if [ "$_v" = charon ]; then lc_stop || true; RESP_PID=""; else resp_stop || true; fi
	_ka=$(($(lb_keys "$KMSD_A_OPS") - _ka)); _kb=$(($(lb_keys "$KMSD_B_OPS") - _kb))
	[ -n "$SUMMARY" ] || echo "bench/load: $_v $_h UEs rate $_r: no summary line from ike-ue (see $LOGS/ue-$_tag.log)" >&2
	_est=$(lb_field "$SUMMARY" established); _held=$(lb_field "$SUMMARY" held_max)
	# held_max 0 or missing: count the established ones as held
	case $_held in ''|-|0) _held=$_est ;; esac
	echo "$_v,$_h,$_r,$_k,$_est,$(lb_field "$SUMMARY" failed),$(lb_field "$SUMMARY" elapsed_s),$(lb_field "$SUMMARY" rate),$(lb_field "$SUMMARY" p50),$(lb_field "$SUMMARY" p90),$(lb_field "$SUMMARY" p99),$(lb_field "$SUMMARY" max),$_held,$_rss0,$_rss1,$(((_cpu1 - _cpu0) * 1000 / LB_HZ)),$_ka,$_kb,$_ld0,$(cut -d' ' -f1 /proc/loadavg),$((_ue1 - _ue0)),$(((_kc1 - _kc0) * 1000 / LB_HZ))" >>"$OUT/raw.csv"
	awk -F, 'END { printf "bench/load: %-14s %5d UEs rate %-6s round %d: %s/%s established, %s conn/s, p50 %s p99 %s ms, %+d KiB RSS, %d ms CPU (UEs %d), keys A %d B %d, load %s\n",
		$1, $2, $3, $4, $5, $2, $8, $9, $11, $15 - $14, $16, $21, $17, $18, $20 }' "$OUT/raw.csv" >&2
}

# --- the run -----------------------------------------------------------------
echo "variant,ues,rate,round,established,failed,elapsed_s,conn_s,p50_ms,p90_ms,p99_ms,max_ms,held_max,rss0_kb,rss_max_kb,cpu_ms,keys_a,keys_b,load_start,load_end,ue_cpu_ms,kms_cpu_ms" >"$OUT/raw.csv"
{
	echo "start $(date -u +%Y-%m-%dT%H:%M:%SZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "tree $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo -)"
	echo "ues $UES rounds $ROUNDS/$ROUNDS_BIG steps $(if [ -n "$RATES" ]; then echo "rates $RATES"; else echo "$STEPS/$STEPS_BIG"; fi) x $STEP_ROUNDS hold $HOLD conc $CONC"
	echo "variants $VARIANTS"
} >"$OUT/meta"
# median_rate VARIANT H: median conn/s of the variant's saturated cells.
median_rate() {
	awk -F, -v v="$1" -v h="$2" '$1 == v && $2 == h && $3 == 0 && $8 != "-" { print $8 }' \
	    "$OUT/raw.csv" | stats | cut -d' ' -f1
}
for h in $UES; do
	rounds=$ROUNDS; steps=$STEPS
	[ "$h" -le 1000 ] || { rounds=$ROUNDS_BIG; steps=$STEPS_BIG; }
	k=1
	while [ $k -le "$rounds" ]; do
		for v in $VARIANTS; do cell "$v" "$h" 0 "$k"; done
		k=$((k + 1))
	done
	[ -n "$steps$RATES" ] || continue
	k=1
	while [ $k -le "$STEP_ROUNDS" ]; do
		for v in $VARIANTS; do
			if [ -n "$RATES" ]; then
				list=$RATES
			else
				x=$(median_rate "$v" "$h")
				list=$(for f in $steps; do awk -v x="$x" -v f="$f" 'BEGIN {
					r = int(x * f); if (x != "-" && r >= 1) print r }'; done)
			fi
			for r in $list; do cell "$v" "$h" "$r" "$k"; done
		done
		k=$((k + 1))
	done
done
echo "end $(date -u +%Y-%m-%dT%H:%M:%SZ) load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/meta"

sh "$top/bench/load/report.sh" "$OUT" | tee "$OUT/table.txt"
