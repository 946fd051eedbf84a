# hops.awk: one ping's way through a tunnel, from `perf script -F
# time,event,trace` of net:net_dev_queue (Q, a packet handed to a device)
# and net:netif_receive_skb (R, a packet received from one), the devices
# of both namespaces in one kernel clock. Per ping, in order:
#   Q tun (UE, request)   Q nwu0 (UE, ESP)    R nwu0 (N3IWF)   R tun (N3IWF)
#   Q tun (N3IWF, reply)  Q nwu0 (N3IWF)      R nwu0 (UE)      R tun (UE)
# (n6 and lo events are ignored). Prints, per leg, the median in us:
#   ue_out   UE: the request in the TUN -> its datagram on the veth
#            (wake-up, TUN read, ESP, sendmmsg)
#   wire1    UE veth -> N3IWF veth
#   n3_in    N3IWF: datagram received -> inner packet out of its TUN
#   dn       N3IWF TUN -> DN and back to the N3IWF's TUN (kernel only)
#   n3_out   N3IWF: the reply in the TUN -> its datagram on the veth
#   wire2    N3IWF veth -> UE veth
#   ue_in    UE: datagram received -> reply out of the TUN
#   total    first to last event
# Usage: awk -v TUN=qkd0 -v LEN=128 -f hops.awk perf-script.txt
# (LEN: the pings' IP length, ping -s LEN-28)
function sec(s) { sub(":$", "", s); return s + 0 }
function med(a, n,   i, j, t) {
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n ? a[int((n + 1) / 2)] : 0
}
BEGIN {
	split("Q" TUN " Qnwu0 Rnwu0 R" TUN " Q" TUN " Qnwu0 Rnwu0 R" TUN, p, " ")
	split("ue_out wire1 n3_in dn n3_out wire2 ue_in", name, " ")
	s = 0; n = 0
}
{
	ev = ""; dev = ""
	for (i = 1; i <= NF; i++) {
		if ($i ~ /net_dev_queue/) ev = "Q"
		else if ($i ~ /netif_receive_skb/) ev = "R"
		else if ($i ~ /^dev=/) { dev = substr($i, 5) }
		else if ($i ~ /^len=/) { len = substr($i, 5) + 0 }
	}
	if (ev == "" || (dev != TUN && dev != "nwu0")) next
	# other tests on this machine have devices of the same names: only
	# our pings (LEN bytes inside, ESP in UDP a little more outside)
	if (dev == TUN && len != LEN) next
	if (dev == "nwu0" && (len < LEN + 20 || len > LEN + 120)) next
	k = ev dev
	tm = sec($1)
	# pings are 10 ms apart: a gap over 5 ms starts a new round trip
	# (Q and R of both ends look alike; this keeps a lost event from
	# pairing one ping's second half with the next one's first)
	if (s > 0 && tm - t[s - 1] > 0.005) s = 0
	if (k == p[s + 1]) { t[s] = tm; s++ }
	else if (k == p[1]) { t[0] = tm; s = 1 }
	else s = 0
	if (s == 8) {
		n++
		for (i = 1; i <= 7; i++) leg[i, n] = (t[i] - t[i - 1]) * 1e6
		tot[n] = (t[7] - t[0]) * 1e6
		s = 0
	}
}
END {
	line = "pings " n
	for (i = 1; i <= 7; i++) {
		for (j = 1; j <= n; j++) v[j] = leg[i, j]
		line = line sprintf(" %s %.1f", name[i], med(v, n))
	}
	printf "%s total %.1f\n", line, med(tot, n)
}
