# The NWu topology in network namespaces (sourced; POSIX sh, dash and bash):
#
#   UE ns            N3IWF ns                         DN ns
#   nwu0 ---(NWu)--- nwu0  [ip_forward=1]  n6 ---(N6)--- n6 (DN_ADDR)
#   NWU_NET.2        NWU_NET.1             N6_NET.1      N6_NET.2
#
# Three namespaces with names unique to the run (qkd-ue-ID, qkd-n3-ID,
# qkd-dn-ID, ID random), two veth pairs (created under unique names, renamed
# nwu0/n6 inside their namespace), loopback up everywhere, forwarding on in
# the N3IWF namespace, and in the DN the route back to the UE inner prefix
# via the N3IWF; IPv4 only (IPv6 off in the namespaces). Nothing is added
# to the root namespace: its only part is the optional kmsd relay
# (nt_relay), a unix socket between 127.0.0.1 of a namespace and 127.0.0.1
# of the root.
#
# Environment (before nt_up): NWU_NET (default 192.168.100, a /24),
# N6_NET (default 10.100.0, a /24), UE_INNER_PREFIX (default 10.60.0.0/16),
# UE_INNER_ADDR (default 10.60.0.2; not configured here: the UE's TUN gets
# it from CP).
#
# Functions (DIR: a directory of the run; everything is recorded there so
# that nt_down from another process undoes it):
#   nt_up DIR                 create; writes DIR/netns.env (sourced back)
#   nt_exec NS CMD...         run CMD in namespace NS ("-": the root one)
#   nt_bg DIR NAME NS CMD...  CMD in NS in the background, output in
#                             DIR/NAME.log, PID in DIR/NAME.pid (NT_PID)
#   nt_stop DIR NAME          SIGTERM (SIGKILL after 5 s) the process NAME
#   nt_relay DIR NS PORT      127.0.0.1:PORT in NS forwards (TCP, through the
#                             unix socket DIR/relay-NS-PORT.sock) to
#                             127.0.0.1:PORT of the root namespace
#   nt_down DIR               stop every process, delete the namespaces
#                             (and so the veths); safe to run twice
# Needs: ip (iproute2), socat (for nt_relay only), od.

nt_log() { echo "netns.sh: $*" >&2; }

# nt_alive PID: running and not a zombie.
nt_alive() {
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
	[ "$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]
}

# nt_wait_gone PID: until PID is gone or a zombie (at most 2 s).
nt_wait_gone() {
	_w=0
	while nt_alive "$1" && [ $_w -lt 100 ]; do sleep 0.02; _w=$((_w + 1)); done
}

nt_exec() {
	_ns=$1; shift
	if [ "$_ns" = - ]; then "$@"; else ip netns exec "$_ns" "$@"; fi
}

# nt_veth NS1 NS2 NAME ADDR1 ADDR2 ID: a veth pair between NS1 and NS2, both
# ends renamed NAME inside their namespace, ADDRn/24 on them, up.
nt_veth() {
	ip link add "v1$3$6" type veth peer name "v2$3$6" || return 1
	ip link set "v1$3$6" netns "$1" && ip link set "v2$3$6" netns "$2" || {
		ip link del "v1$3$6" 2>/dev/null; return 1; }
	ip -n "$1" link set "v1$3$6" name "$3" && ip -n "$2" link set "v2$3$6" name "$3" &&
	    ip -n "$1" addr add "$4/24" dev "$3" && ip -n "$2" addr add "$5/24" dev "$3" &&
	    ip -n "$1" link set "$3" up && ip -n "$2" link set "$3" up
}

# nt_up DIR
nt_up() {
	_d=$1
	mkdir -p "$_d" || return 1
	_id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
	_nwu=${NWU_NET:-192.168.100}; _n6=${N6_NET:-10.100.0}
	cat >"$_d/netns.env" <<EOT
UE_NETNS=qkd-ue-$_id
N3IWF_NETNS=qkd-n3-$_id
DN_NETNS=qkd-dn-$_id
NWU_NETNS=qkd-n3-$_id
NWU_IFACE=nwu0
N6_IFACE=n6
UE_NWU_ADDR=$_nwu.2
N3IWF_NWU_ADDR=$_nwu.1
N3IWF_N6_ADDR=$_n6.1
DN_ADDR=$_n6.2
N6_PREFIX=$_n6.0/24
UE_INNER_PREFIX=${UE_INNER_PREFIX:-10.60.0.0/16}
UE_INNER_ADDR=${UE_INNER_ADDR:-10.60.0.2}
EOT
	. "$_d/netns.env"
	for _ns in "$UE_NETNS" "$N3IWF_NETNS" "$DN_NETNS"; do
		ip netns add "$_ns" || { nt_log "ip netns add $_ns failed"; return 1; }
		echo "$_ns" >>"$_d/netns.list"
		# no IPv6: no neighbour discovery or MLD chatter on the links
		# (a capture on NWu must show only what the endpoints send)
		ip netns exec "$_ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
		    net.ipv6.conf.default.disable_ipv6=1 || return 1
		ip -n "$_ns" link set lo up || return 1
	done
	nt_veth "$UE_NETNS" "$N3IWF_NETNS" nwu0 "$UE_NWU_ADDR" "$N3IWF_NWU_ADDR" "$_id" &&
	    nt_veth "$N3IWF_NETNS" "$DN_NETNS" n6 "$N3IWF_N6_ADDR" "$DN_ADDR" "$_id" || {
		nt_log "veth setup failed"; return 1; }
	ip netns exec "$N3IWF_NETNS" sysctl -qw net.ipv4.ip_forward=1 \
	    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 || return 1
	ip -n "$DN_NETNS" route add "$UE_INNER_PREFIX" via "$N3IWF_N6_ADDR" || return 1
}

# nt_bg DIR NAME NS CMD...
nt_bg() {
	_d=$1; _n=$2; _ns=$3; shift 3
	if [ "$_ns" = - ]; then
		"$@" </dev/null >>"$_d/$_n.log" 2>&1 &
	else
		ip netns exec "$_ns" "$@" </dev/null >>"$_d/$_n.log" 2>&1 &
	fi
	NT_PID=$!
	echo "$NT_PID" >"$_d/$_n.pid"
	echo "$_n" >>"$_d/netns.procs"
}

# nt_stop DIR NAME
nt_stop() {
	[ -f "$1/$2.pid" ] || return 0
	_p=$(cat "$1/$2.pid")
	if kill -TERM "$_p" 2>/dev/null; then
		_i=0
		while nt_alive "$_p" && [ $_i -lt 100 ]; do sleep 0.05; _i=$((_i + 1)); done
		nt_alive "$_p" && kill -KILL "$_p" 2>/dev/null && nt_wait_gone "$_p"
	fi
	rm -f "$1/$2.pid"
	return 0
}

# nt_relay DIR NS PORT: waits until the namespace side listens.
nt_relay() {
	_s=$1/relay-$2-$3.sock
	rm -f "$_s"
	nt_bg "$1" "relay-root-$2-$3" - socat \
	    "UNIX-LISTEN:$_s,fork,unlink-early" "TCP4:127.0.0.1:$3"
	nt_bg "$1" "relay-$2-$3" "$2" socat \
	    "TCP4-LISTEN:$3,bind=127.0.0.1,reuseaddr,fork" "UNIX-CONNECT:$_s"
	_i=0
	until [ -S "$_s" ] && ip netns exec "$2" ss -Hltn "sport = :$3" | grep -q .; do
		_i=$((_i + 1))
		[ $_i -lt 200 ] || { nt_log "relay to port $3 in $2 did not start"; return 1; }
		sleep 0.02
	done
}

# nt_down DIR: processes first (newest first), then whatever still runs in
# our namespaces (started there by us), then the namespaces.
nt_down() {
	_d=$1
	if [ -f "$_d/netns.procs" ]; then
		for _n in $(sed -n '1!G;h;$p' "$_d/netns.procs"); do nt_stop "$_d" "$_n"; done
		rm -f "$_d/netns.procs"
	fi
	[ -f "$_d/netns.list" ] || return 0
	for _ns in $(cat "$_d/netns.list"); do
		for _p in $(ip netns pids "$_ns" 2>/dev/null); do
			kill -KILL "$_p" 2>/dev/null && nt_wait_gone "$_p"
		done
		ip netns del "$_ns" 2>/dev/null
	done
	rm -f "$_d/netns.list" "$_d"/relay-*.sock
	return 0
}
