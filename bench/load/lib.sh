# shellcheck shell=sh
# Measurement helpers of bench/load/run.sh (sourced): a responder's memory
# and CPU from /proc, keys served from kmsd's /metrics, the load summary
# line of ike-ue.

# lb_rss_kb PID: VmRSS of PID in KiB (empty if it is gone).
lb_rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null; }

# lb_cpu_ticks PID: utime + stime of PID, all its threads, in clock ticks
# (/proc/PID/stat fields 14 and 15, counted after the "(comm)" field).
lb_cpu_ticks() {
	sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'
}
LB_HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)

# lb_sampler_start PID FILE: in the background, every 0.1 s, the highest
# VmRSS of PID so far into FILE (one number, KiB), until lb_sampler_stop.
# LB_SAMPLER: its pid.
lb_sampler_start() {
	(
		max=0
		while [ -r "/proc/$1/status" ]; do
			r=$(lb_rss_kb "$1")
			if [ -n "$r" ] && [ "$r" -gt "$max" ]; then
				max=$r
				echo "$max" >"$2.tmp" && mv "$2.tmp" "$2"
			fi
			sleep 0.1
		done
	) &
	LB_SAMPLER=$!
}
lb_sampler_stop() {
	kill "$LB_SAMPLER" 2>/dev/null || true
	wait "$LB_SAMPLER" 2>/dev/null || true
}

# lb_served OPS_URL ENDPOINT: kmsd's keys served so far at ENDPOINT
# (enc_keys, dec_keys), from its /metrics.
lb_served() {
	curl -s --max-time 10 "$1/metrics" | awk -v m="kmsd_keys_served_total{endpoint=\"$2\"}" \
	    '$1 == m { print $2; f = 1 } END { if (!f) print 0 }'
}
# lb_keys OPS_URL: enc_keys + dec_keys served so far (0 without kmsd).
lb_keys() {
	if [ -z "$1" ]; then echo 0; return; fi
	echo $(($(lb_served "$1" enc_keys) + $(lb_served "$1" dec_keys)))
}

# lb_field LINE NAME: the value of NAME=VALUE in ike-ue's summary line
# "load: ues=N established=E failed=F elapsed_s=T rate=X.X/s setup_ms
# p50=A p90=B p99=C max=D held_max=H" ("-" when it is missing).
lb_field() {
	echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { v = $2 } END {
		sub(/\/s$/, "", v); print (v == "" ? "-" : v) }'
}

# lb_wait_gone PID SECONDS: until PID has exited (1 if it has not).
lb_wait_gone() {
	_i=0
	while lb_alive "$1"; do
		_i=$((_i + 1))
		[ $_i -lt $(($2 * 20)) ] || return 1
		sleep 0.05
	done
}

# lb_alive PID: running and not a zombie.
lb_alive() {
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] &&
	    [ "$(sed 's/^.*) //' "/proc/$1/stat" | cut -c1)" != Z ]
}

# lb_children_ms FILE: LB_CHILD_MS = user + system CPU ms of this shell's
# waited-for children so far (the shell's `times`; call it directly, not in
# $(...): a subshell's children start at 0), through FILE.
lb_children_ms() {
	times >"$1"
	LB_CHILD_MS=$(sed -n 2p "$1" | tr 'ms' '  ' |
	    awk '{ printf "%d", ($1 * 60 + $2 + $3 * 60 + $4) * 1000 }')
}

# lb_tb_ticks DIR: CPU ticks of the test bed's daemons so far (KME A and B,
# kmsd A and B: DIR/*.pid of tests/testbed.sh).
lb_tb_ticks() {
	_t=0
	for _u in kme-a kme-b kmsd-a kmsd-b; do
		[ -f "$1/$_u.pid" ] || continue
		_c=$(lb_cpu_ticks "$(cat "$1/$_u.pid")")
		_t=$((_t + ${_c:-0}))
	done
	echo "$_t"
}
