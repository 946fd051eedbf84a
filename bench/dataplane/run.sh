#!/bin/sh
# Data-plane benchmark (issue 10): the UE -> DN path through the N3IWF in
# the testbed's namespaces (tests/netns.sh: UE, N3IWF, DN; NWu and N6 veth
# links), one fresh topology per configuration:
#   plain     routed forwarding through the N3IWF namespace, no tunnel
#   tunfwd    TUN -> UDP -> TUN without crypto (bench/dataplane/tunfwd.c):
#             the ceiling of any userspace tunnel over TUN
#   ss-gcm    strongSwan charon (Debian 5.9.8) with kernel-libipsec, ESP in
#             UDP 4500 (encap=yes), aes256gcm16, PSK
#   ss-cbc    the same with aes256-sha256 (AES-CBC-256 + HMAC-SHA2-256-128)
#   ours-gcm, ours-cbc   our ike-ue / ike-n3iwf with --tunnel yes (psk
#             mode, nwu: NAS over TCP, user plane in GRE): their ESP in
#             UDP 4500 on TUN devices (setup_ours)
# Each: iperf3 TCP UE -> DN (RUNS runs of SECS s, median and all runs),
# iperf3 UDP (one run of SECS s at full rate, 1,200-byte datagrams: what the
# DN received, and the loss), and ping UE -> DN (PINGS pings, 10 ms apart:
# p50 and p90 RTT), and the CPU time both tunnel end points used during the
# TCP runs per GB carried. Traffic stays inside our namespaces.
#
#   sh bench/dataplane/run.sh [OUTDIR]        (default /tmp/qkd-dp.XXXXXX)
#   RUNS=3 SECS=10 PINGS=200 CONFIGS="plain tunfwd ss-gcm ss-cbc ours-gcm ours-cbc"
#
# Writes OUTDIR/results.csv and prints a Markdown table (BENCHMARKS.md).
# Needs root, iperf3, jq, socat-free (no kmsd here), strongSwan
# (tests/interop/charon.sh), `make` (tunfwd).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=${RUNS:-3}
SECS=${SECS:-10}
PINGS=${PINGS:-200}
CONFIGS=${CONFIGS:-plain tunfwd ss-gcm ss-cbc ours-gcm ours-cbc}
TRACE=${TRACE:-0}	# 1: also the legs of a round trip (trace_hops, perf)
TOOLDIR=${TOOLDIR:-$top/${BUILD:-build}/tools}
BINDIR=${BINDIR:-$top/bin}
MTU=1400	# kernel-libipsec's ipsec0 MTU; tunfwd's TUN gets the same
out=${1:-$(mktemp -d /tmp/qkd-dp.XXXXXX)}
mkdir -p "$out" && out=$(cd "$out" && pwd)
. "$top/tests/netns.sh"
CS_HOME=$top/tests/interop
. "$top/tests/interop/charon.sh"

die() { echo "dataplane: $*" >&2; exit 1; }
[ "$TRACE" = 1 ] && { command -v perf >/dev/null 2>&1 || die "TRACE=1: missing perf (mk/deps.sh)"; }
for b in ip iperf3 jq ping "$TOOLDIR/tunfwd"; do
	command -v "$b" >/dev/null 2>&1 || die "missing $b (mk/deps.sh, make)"
done
cs_install || die "strongSwan missing (mk/deps.sh)"

cur=""
cleanup() {
	[ -z "$cur" ] && return 0
	cs_cleanup "$cur/cs.reg" 2>/dev/null
	nt_down "$cur"
	cur=""
}
trap 'cleanup' EXIT
trap 'cleanup; exit 1' INT TERM

# route_ue DEV|via ADDR: the UE's inner address on lo, DN prefix through it.
ue_inner() { ip -n "$UE_NETNS" addr add "$UE_INNER_ADDR/32" dev lo; }

setup_plain() {
	ue_inner &&
	    ip -n "$UE_NETNS" route add "$N6_PREFIX" via "$N3IWF_NWU_ADDR" src "$UE_INNER_ADDR" &&
	    ip -n "$N3IWF_NETNS" route add "$UE_INNER_PREFIX" via "$UE_NWU_ADDR"
}

# tun_end NS NAME LOCAL PEER: a tunfwd TUN dpb0 in NS, up, MTU.
tun_end() {
	nt_bg "$cur" "$2" "$1" "$TOOLDIR/tunfwd" -t dpb0 -l "$3:4500" -p "$4:4500"
	i=0
	until ip -n "$1" link show dpb0 >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -lt 100 ] || return 1; sleep 0.02
	done
	ip -n "$1" link set dpb0 mtu $MTU up
}
setup_tunfwd() {
	tun_end "$UE_NETNS" tunfwd-ue "$UE_NWU_ADDR" "$N3IWF_NWU_ADDR" &&
	    tun_end "$N3IWF_NETNS" tunfwd-n3 "$N3IWF_NWU_ADDR" "$UE_NWU_ADDR" &&
	    ip -n "$UE_NETNS" addr add "$UE_INNER_ADDR/32" dev dpb0 &&
	    ip -n "$UE_NETNS" route add "$N6_PREFIX" dev dpb0 src "$UE_INNER_ADDR" &&
	    ip -n "$N3IWF_NETNS" route add "$UE_INNER_PREFIX" dev dpb0
}

# setup_ss ESP_PROPOSAL: charon responder in the N3IWF namespace, initiator
# in the UE namespace, PSK, ESP in UDP 4500 forced (encap = yes).
setup_ss() {
	psk=0x$(openssl rand -hex 32)
	ue_inner || return 1
	CS_LOGLEVEL=1 cs_start "$cur/cs-n3" "$N3IWF_NETNS" && CS_LOGLEVEL=1 cs_start "$cur/cs-ue" "$UE_NETNS" || return 1
	cs_load "$cur/cs-n3" psk-responder LOCAL_ADDRS="$N3IWF_NWU_ADDR" \
	    LOCAL_ID=n3iwf.test REMOTE_ID=ue.test PSK="$psk" ENCAP=yes \
	    ESP_PROPOSALS="$1" LOCAL_TS="$N6_PREFIX" REMOTE_TS="$UE_INNER_PREFIX" &&
	    cs_load "$cur/cs-ue" psk-initiator LOCAL_ADDRS="$UE_NWU_ADDR" \
		REMOTE_ADDRS="$N3IWF_NWU_ADDR" LOCAL_ID=ue.test REMOTE_ID=n3iwf.test \
		PSK="$psk" ENCAP=yes ESP_PROPOSALS="$1" \
		LOCAL_TS="$UE_INNER_ADDR/32" REMOTE_TS="$N6_PREFIX" &&
	    cs_initiate "$cur/cs-ue" 15 || { echo "charon: $(tail -n 3 "$cur/cs-ue/initiate.log")" >&2; return 1; }
	s=$(cs_child_summary "$cur/cs-ue")
	[ "$s" = "INSTALLED $(cs_esp_name "$1")" ] || { echo "charon Child SA: [$s]" >&2; return 1; }
	[ "$(cs_child_get "$cur/cs-ue" encap)" = yes ] || { echo "charon: no UDP encapsulation" >&2; return 1; }
}

# ===== setup_ours CIPHER (aes-gcm | aes-cbc): our ike-ue / ike-n3iwf =====
# ike-n3iwf in $N3IWF_NETNS (--listen $N3IWF_NWU_ADDR:500, --cipher CIPHER,
# psk mode, nwu profile, --tunnel yes: its TUN routes $UE_INNER_PREFIX) and
# ike-ue in $UE_NETNS (--local $UE_NWU_ADDR, held up, --tunnel yes: its
# TUN on $UE_INNER_ADDR from CP, $N6_PREFIX routed into it; MTU 1400 as
# the others); NAS over TCP brings the user-plane Child SA up; waits for
# the UE's "tunnel up" line. ours-*.pid: the CPU column counts them.
setup_ours() {
	cipher=$1; shift	# the rest: settings for both ends
	pki=$top/certs/out
	psk=0x$(openssl rand -hex 32)
	rm -f "$cur/ours-n3.ready"
	nt_bg "$cur" ours-n3 "$N3IWF_NETNS" "$BINDIR/ike-n3iwf" --mode psk \
	    --profile nwu --cipher "$cipher" --listen "$N3IWF_NWU_ADDR:500" \
	    --natt-port 4500 --inner-ip "$UE_INNER_ADDR" --psk "$psk" \
	    --cert "$pki/sae-a.crt" --key "$pki/sae-a.key" --ca "$pki/ca.crt" \
	    --tunnel yes --tun-route "$UE_INNER_PREFIX" --tun-name dpb0 \
	    --ready-file "$cur/ours-n3.ready" "$@"
	i=0
	until [ -s "$cur/ours-n3.ready" ]; do
		i=$((i + 1)); [ $i -lt 200 ] || { echo "ike-n3iwf: $(tail -n 3 "$cur/ours-n3.log")" >&2; return 1; }
		sleep 0.05
	done
	nt_bg "$cur" ours-ue "$UE_NETNS" "$BINDIR/ike-ue" --mode psk \
	    --profile nwu --cipher "$cipher" --peer "$N3IWF_NWU_ADDR:500" \
	    --local "$UE_NWU_ADDR" --psk "$psk" --ca "$pki/ca.crt" \
	    --tunnel yes --tun-route "$N6_PREFIX" --tun-name dpb0 --hold 0 "$@"
	i=0
	until grep -q "tunnel up: inner $UE_INNER_ADDR" "$cur/ours-ue.log" 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 300 ] || { echo "ike-ue: $(tail -n 3 "$cur/ours-ue.log")" >&2; return 1; }
		sleep 0.05
	done
}
# ===== end of the integrator's slot =====

# cpu_ticks PID...: user + system clock ticks of the processes so far.
cpu_ticks() {
	for _p in "$@"; do sed 's/^.*) //' "/proc/$_p/stat" 2>/dev/null; done |
	    awk '{ t += $12 + $13 } END { print t + 0 }'
}
# cpu_ns PID...: nanoseconds on a CPU of all their threads so far.
cpu_ns() {
	for _p in "$@"; do cat /proc/"$_p"/task/*/schedstat 2>/dev/null; done |
	    awk '{ t += $1 } END { printf "%.0f\n", t }'
}
# endpoints: the PIDs of the tunnel end points (none for plain).
endpoints() {
	for f in "$cur"/tunfwd-*.pid "$cur"/cs-*/charon.pid "$cur"/ours-*.pid; do
		[ -f "$f" ] && cat "$f"
	done
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
pct() { sort -n | awk -v p="$1" '{ v[NR] = $1 } END { if (NR) { i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print v[i] } }'; }
mbps() { awk '{ printf "%.0f\n", $1 / 1e6 }'; }

# trace_hops CFG: PINGS more pings under perf's net tracepoints (all
# namespaces, one clock); hops.awk splits each round trip into its legs.
# 128-byte pings and TUNs named dpb0 (ss: ipsec0): other tests on the
# machine may have a qkd0, tun0 and nwu0 of their own.
trace_hops() {
	case $1 in ss-*) tn=ipsec0 ;; *) tn=dpb0 ;; esac
	perf record -q -a -e net:net_dev_queue -e net:netif_receive_skb \
	    -o "$cur/perf.data" -- ip netns exec "$UE_NETNS" ping -c "$PINGS" \
	    -s 100 -i 0.01 -I "$UE_INNER_ADDR" "$DN_ADDR" >"$cur/ping-traced.txt" 2>&1
	perf script -i "$cur/perf.data" -F time,event,trace 2>/dev/null |
	    awk -v TUN="$tn" -v LEN=128 -f "$top/bench/dataplane/hops.awk" >"$cur/hops.txt"
	[ -n "${KEEP_PERF:-}" ] || rm -f "$cur/perf.data"
	HOPS=$(cat "$cur/hops.txt")
	echo "$1 $HOPS" >>"$out/hops.txt"
}

# measure CFG: iperf3 server in the DN, TCP RUNS x SECS, UDP, ping.
measure() {
	nt_bg "$cur" iperf3-dn "$DN_NETNS" iperf3 -s -B "$DN_ADDR"
	i=0
	until ip netns exec "$DN_NETNS" ss -Hltn "sport = :5201" | grep -q .; do
		i=$((i + 1)); [ $i -lt 100 ] || return 1; sleep 0.05
	done
	ue() { ip netns exec "$UE_NETNS" "$@"; }
	ue ping -c 3 -i 0.2 -W 2 -I "$UE_INNER_ADDR" "$DN_ADDR" >/dev/null 2>&1 ||
	    { echo "$1: DN_ADDR does not answer through the path" >&2; return 1; }
	tcp=""; bytes=0
	eps=$(endpoints)
	c0=$(cpu_ticks $eps)
	r=1
	while [ $r -le "$RUNS" ]; do
		ue iperf3 -c "$DN_ADDR" -B "$UE_INNER_ADDR" -t "$SECS" -J >"$cur/tcp$r.json" 2>&1
		tcp="$tcp $(jq -r '.end.sum_received.bits_per_second // 0' "$cur/tcp$r.json" | mbps)"
		bytes=$((bytes + $(jq -r '.end.sum_received.bytes // 0' "$cur/tcp$r.json")))
		r=$((r + 1))
	done
	# CPU of both tunnel end points per GB of TCP payload: less noisy than
	# the throughput on a shared machine.
	CPU_GB=""
	[ -z "$eps" ] || [ "$bytes" -eq 0 ] || CPU_GB=$(awk -v t="$(($(cpu_ticks $eps) - c0))" \
	    -v hz="$(getconf CLK_TCK)" -v b="$bytes" 'BEGIN { printf "%.2f", t / hz / (b / 1e9) }')
	ue iperf3 -c "$DN_ADDR" -B "$UE_INNER_ADDR" -u -b 0 -l 1200 -t "$SECS" -J >"$cur/udp.json" 2>&1
	udp=$(jq -r '.end.sum | "\(.bits_per_second * (1 - .lost_percent / 100)) \(.lost_percent)"' "$cur/udp.json" 2>/dev/null)
	n0=$(cpu_ns $eps)
	ue ping -c "$PINGS" -i 0.01 -I "$UE_INNER_ADDR" "$DN_ADDR" >"$cur/ping.txt" 2>&1
	# CPU of both end points per ping (what spinning costs at 100/s)
	CPU_PING=""
	[ -z "$eps" ] || CPU_PING=$(awk -v a="$n0" -v b="$(cpu_ns $eps)" \
	    -v n="$PINGS" 'BEGIN { printf "%.0f", (b - a) / 1e3 / n }')
	sed -n 's/.* time=\([0-9.]*\) ms/\1/p' "$cur/ping.txt" >"$cur/rtt.txt"
	HOPS=""
	[ "$TRACE" = 1 ] && [ "$1" != plain ] && trace_hops "$1"
	TCP_MED=$(printf '%s\n' $tcp | median)
	TCP_ALL=$(echo $tcp | tr ' ' '/')
	UDP_RX=$(echo "$udp" | awk '{ printf "%.0f", $1 / 1e6 }')
	UDP_LOSS=$(echo "$udp" | awk '{ printf "%.1f", $2 }')
	P50=$(pct 50 <"$cur/rtt.txt"); P90=$(pct 90 <"$cur/rtt.txt")
	NPING=$(grep -c . "$cur/rtt.txt")
}

echo "config,tcp_mbps_median,tcp_mbps_runs,udp_rx_mbps,udp_loss_pct,ping_p50_ms,ping_p90_ms,pings_answered,endpoint_cpu_s_per_gb,endpoint_cpu_us_per_ping" >"$out/results.csv"
for cfg in $CONFIGS; do
	cur=$out/$cfg
	rm -rf "$cur"; mkdir -p "$cur"
	nt_up "$cur" || die "$cfg: topology failed"
	. "$cur/netns.env"
	CS_REG=$cur/cs.reg; : >"$CS_REG"
	case $cfg in
	plain) setup_plain ;;
	tunfwd) setup_tunfwd ;;
	ss-gcm) setup_ss aes256gcm16 ;;
	ss-cbc) setup_ss aes256-sha256 ;;
	ours-gcm) setup_ours aes-gcm ;;
	ours-cbc) setup_ours aes-cbc ;;
	ours-gcm-spin*) setup_ours aes-gcm --tun-spin-us "${cfg#ours-gcm-spin}" ;;
	*) die "unknown configuration $cfg" ;;
	esac
	rc=$?
	if [ $rc -eq 2 ]; then
		echo "$cfg,to come,,,,,,,," >>"$out/results.csv"
	elif [ $rc -ne 0 ]; then
		echo "$cfg,setup failed,,,,,,,," >>"$out/results.csv"
		echo "dataplane: $cfg: setup failed (see $cur)" >&2
	elif measure "$cfg"; then
		echo "$cfg,$TCP_MED,$TCP_ALL,$UDP_RX,$UDP_LOSS,$P50,$P90,$NPING/$PINGS,$CPU_GB,$CPU_PING" >>"$out/results.csv"
	else
		echo "$cfg,measure failed,,,,,,,," >>"$out/results.csv"
	fi
	cleanup
done
trap - EXIT
echo "| configuration | TCP Mbit/s (median of $RUNS x ${SECS} s; runs) | end points' CPU s per GB (TCP) | UDP Mbit/s received (loss) | ping p50 / p90 ms ($PINGS at 10 ms) | p50 over plain, ms | end points' CPU us per ping |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
awk -F, '$1 == "plain" && $6 != "" { base = $6 }
	NR > 1 { row[NR] = $0 }
	END { for (i = 2; i <= NR; i++) { split(row[i], f, ",");
		if (f[3] == "") { printf "| %s | %s | | | | | |\n", f[1], f[2]; continue }
		o = (base == "") ? "" : sprintf("%+.3f", f[6] - base);
		printf "| %s | %s (%s) | %s | %s (%s %%) | %s / %s | %s | %s |\n", f[1], f[2], f[3],
		    (f[9] == "" ? "-" : f[9]), f[4], f[5], f[6], f[7], o, (f[10] == "" ? "-" : f[10]) } }' "$out/results.csv"
echo "(results: $out/results.csv)"
