#!/bin/sh
# strongSwan (charon) as a test peer, each instance in its own network
# namespace with its own /run (a private tmpfs: charon keeps its PID file and
# control socket there, so two instances do not collide) and driven with
# `swanctl --uri unix://...`. kernel-libipsec does the ESP in userspace over
# a TUN device, because the test machines' XFRM has no ESP algorithms (with
# the default kernel-netlink plugin the IKE SA comes up but the Child SA
# fails to install).
#
# Source it (`. tests/interop/charon.sh`) for the cs_* functions, or run it:
#   sh tests/interop/charon.sh install
#   sh tests/interop/charon.sh netns-add NS
#   sh tests/interop/charon.sh link NS1 IF1 ADDR1/LEN NS2 IF2 ADDR2/LEN   (NS "-" = root)
#   sh tests/interop/charon.sh start DIR NS          (charon of DIR, in NS)
#   sh tests/interop/charon.sh load DIR TEMPLATE [VAR=VALUE]...
#   sh tests/interop/charon.sh swanctl DIR [swanctl args]...
#   sh tests/interop/charon.sh stop DIR
#   sh tests/interop/charon.sh netns-del NS
#   sh tests/interop/charon.sh cleanup REGFILE       (undo what CS_REG recorded)
#   sh tests/interop/charon.sh selftest [psk|cert|ppk]...
#
# Workplace rule: traffic goes only to 127.0.0.0/8 or to our own test hosts
# in namespaces we create. cs_link accepts only 10.99.x.y addresses, refuses
# one that is already in use, and nothing here adds a default or any other
# route: the only routes are the links' connected /30s and, inside a charon's
# namespace, kernel-libipsec's routes for the Child SA's traffic selectors
# (table 220, through the TUN device ipsec0; charon's own IKE/ESP-in-UDP
# packets carry fwmark 0x4b45 and skip that table).
#
# Functions (see each one's comment): cs_install, cs_free_net, cs_ns_add,
# cs_link, cs_addr, cs_start, cs_load, cs_swanctl, cs_initiate,
# cs_terminate, cs_sas, cs_ike_get/cs_child_get, cs_ike_summary/
# cs_child_summary, cs_monitor_start/stop + cs_ev_up/cs_ev_peer_delete,
# cs_mkcert, cs_ike_name/cs_esp_name, cs_stop, cs_ns_del, cs_cleanup.
# Shell: POSIX sh plus `local` (dash, bash).
#
# CS_REG=FILE (optional): every namespace, root-side link, charon and
# monitor that is made is recorded there, and `cs_cleanup` (e.g. from a
# trap) undoes them.

# CS_HOME: this folder (found from $0 when run, or from a script in
# tests/<anything>/ that sources it; else set CS_HOME before sourcing).
CS_HOME=${CS_HOME:-$(cd "$(dirname "$0")" 2>/dev/null && pwd)}
[ -f "$CS_HOME/strongswan.conf.in" ] ||
    CS_HOME=$(cd "$(dirname "$0")/../interop" 2>/dev/null && pwd)
CHARON=${CHARON:-/usr/lib/ipsec/charon}
CS_PLUGINS=/usr/lib/ipsec/plugins

cs_log() { echo "charon.sh: $*" >&2; }
cs_reg() { [ -n "${CS_REG:-}" ] && echo "$*" >>"$CS_REG"; return 0; }
cs_ms()  { echo $(($(date +%s%N) / 1000000)); }

# cs_install: strongSwan (with the openssl plugin the test charons load:
# libstrongswan-standard-plugins) + iproute2 (+ ping, for the self-test) from Debian,
# only what is missing; needs root for apt-get. Quiet; log in /tmp.
cs_install() {
	local l
	if [ -x "$CHARON" ] && command -v swanctl >/dev/null 2>&1 &&
	    [ -f "$CS_PLUGINS/libstrongswan-kernel-libipsec.so" ] &&
	    [ -f "$CS_PLUGINS/libstrongswan-openssl.so" ] &&
	    command -v ip >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1 &&
	    command -v ping >/dev/null 2>&1; then
		return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		cs_log "strongSwan is not installed and we are not root"
		return 1
	fi
	l=/tmp/charon-sh-apt.log
	if ! { apt-get update -qq &&
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends strongswan-charon strongswan-swanctl \
		libcharon-extra-plugins libstrongswan-standard-plugins \
		iproute2 iputils-ping; } >"$l" 2>&1; then
		cs_log "apt-get failed: $(tail -n 3 "$l")"
		return 1
	fi
	[ -x "$CHARON" ] && [ -f "$CS_PLUGINS/libstrongswan-kernel-libipsec.so" ] &&
	    [ -f "$CS_PLUGINS/libstrongswan-openssl.so" ]
}

# cs_ns_add NS: a new network namespace with only lo up.
cs_ns_add() {
	ip netns add "$1" || return 1
	cs_reg "ns $1"
	ip -n "$1" link set lo up
}

# cs_ns_del NS
cs_ns_del() {
	ip netns del "$1" 2>/dev/null
	return 0
}

# cs_addr_free ADDR: no interface in the root namespace has ADDR.
cs_addr_free() {
	[ -z "$(ip -o -4 addr show 2>/dev/null | awk -v a="$1" '{split($4, p, "/"); if (p[1] == a) print}')" ]
}

# cs_free_net: prints a free "10.99.N" (no 10.99.N.x address in the root
# namespace), N from the PID so parallel runs differ.
cs_free_net() {
	local n i
	n=$(($$ % 200 + 20)); i=0
	while [ $i -lt 200 ]; do
		if ! ip -o -4 addr show 2>/dev/null | grep -q " 10\.99\.$n\." &&
		    ! ip -4 route show 2>/dev/null | grep -q "^10\.99\.$n\."; then
			echo "10.99.$n"; return 0
		fi
		n=$((n % 230 + 20)); i=$((i + 1))
	done
	return 1
}

# cs_link NS1 IF1 ADDR1/LEN NS2 IF2 ADDR2/LEN: a veth pair IF1<->IF2, IF1 in
# NS1 and IF2 in NS2 ("-" = the root namespace), addressed and up.
cs_link() {
	local a s
	for a in "$3" "$6"; do
		case $a in
		10.99.*.*/*) ;;
		*) cs_log "cs_link: $a: only 10.99.x.y/len (our own test hosts)"; return 1 ;;
		esac
		if ! cs_addr_free "${a%/*}"; then
			cs_log "cs_link: ${a%/*} is already in use in the root namespace"
			return 1
		fi
	done
	ip link add "$2" type veth peer name "$5" || return 1
	if [ "$1" = - ] || [ "$4" = - ]; then
		# deleting the namespace deletes the pair; this catches the rest
		[ "$1" = - ] && cs_reg "link $2" || cs_reg "link $5"
	fi
	for s in "$1 $2 $3" "$4 $5 $6"; do
		set -- $s
		if [ "$1" = - ]; then
			ip addr add "$3" dev "$2" && ip link set "$2" up || return 1
		else
			ip link set "$2" netns "$1" &&
			    ip -n "$1" addr add "$3" dev "$2" &&
			    ip -n "$1" link set "$2" up || return 1
		fi
	done
}

# cs_addr NS ADDR/32: an extra address on lo of NS (a tunnel end point).
cs_addr() {
	case $2 in 10.99.*) ;; *) cs_log "cs_addr: only 10.99.x.y"; return 1 ;; esac
	ip -n "$1" addr add "$2" dev lo
}

# cs_render TEMPLATE OUT [VAR=VALUE]...: @VAR@ -> VALUE (the first VAR=
# given wins; comment lines keep theirs); fails if a placeholder is left.
cs_render() {
	local t o sc kv k v
	t=$1; o=$2; shift 2
	sc=""
	for kv in "$@"; do
		k=${kv%%=*}; v=${kv#*=}
		v=$(printf '%s' "$v" | sed 's/[\\|&]/\\&/g')
		sc="${sc}/^[[:space:]]*#/!s|@$k@|$v|g
"
	done
	sed "$sc" "$t" >"$o" || return 1
	if grep -n '@[A-Z_]*@' "$o" | grep -v '^[0-9]*:#' >&2; then
		cs_log "cs_render: $o: placeholders left (above)"
		return 1
	fi
}

# cs_start DIR NS [ROUTES=yes|no]: charon with DIR/strongswan.conf (made from
# the template if missing), vici socket DIR/charon.vici, log DIR/charon.log,
# in network namespace NS ("-": the current one), with a private tmpfs /run
# (pid file etc.).
# Waits until vici answers; DIR/start_ms gets how long that took.
cs_start() {
	local d ns routes t0 i
	d=$1; ns=$2; routes=${3:-yes}
	mkdir -p "$d" || return 1
	d=$(cd "$d" && pwd)
	if [ ${#d} -gt 90 ]; then cs_log "cs_start: $d: too long for a unix socket"; return 1; fi
	[ -f "$d/strongswan.conf" ] || cs_render "$CS_HOME/strongswan.conf.in" \
	    "$d/strongswan.conf" DIR="$d" ROUTES="$routes" LOGLEVEL="${CS_LOGLEVEL:-2}" ||
	    return 1
	rm -f "$d/charon.vici" "$d/charon.log" "$d/charon.pid"
	t0=$(cs_ms)
	if [ "$ns" = - ]; then set --; else set -- ip netns exec "$ns"; fi
	# setsid: signals to our process group (Ctrl-C, timeout(1)) do not
	# reach charon; cs_stop / cs_cleanup stop it. The shell writes the pid
	# that charon then has, whatever setsid did.
	STRONGSWAN_CONF=$d/strongswan.conf setsid "$@" \
	    unshare -m --propagation private \
	    sh -c 'echo $$ >"$1.tmp" && mv "$1.tmp" "$1" &&
		mount -t tmpfs tmpfs /run && exec "$0"' "$CHARON" "$d/charon.pid" \
	    </dev/null >"$d/charon.out" 2>&1 &
	cs_reg "charon $d"
	i=0
	while [ ! -s "$d/charon.pid" ]; do
		i=$((i + 1))
		if [ $i -ge 100 ]; then cs_log "charon in $ns: did not start: $(tail -n 3 "$d/charon.out")"; return 1; fi
		sleep 0.02
	done
	i=0
	while ! cs_swanctl "$d" --stats >/dev/null 2>&1; do
		if ! cs_alive "$(cat "$d/charon.pid")"; then
			cs_log "charon in $ns died: $(tail -n 3 "$d/charon.out" "$d/charon.log" 2>/dev/null)"
			return 1
		fi
		i=$((i + 1))
		if [ $i -ge 300 ]; then cs_log "charon in $ns: no vici after 15 s"; return 1; fi
		sleep 0.05
	done
	echo $(($(cs_ms) - t0)) >"$d/start_ms"
}

# cs_watchdog LIMIT_S: a background job that prints "not ok - time limit"
# and SIGTERMs this shell after LIMIT_S s (its pid in CS_WD: kill it at the
# end).
cs_watchdog() {
	(
		i=0
		while [ $i -lt "$1" ]; do sleep 1; i=$((i + 1)); done
		echo "not ok - time limit: the test ran over $1 s"
		kill -TERM $$
	) &
	CS_WD=$!
}

# cs_alive PID: running and not a zombie.
cs_alive() {
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
	[ "$(sed 's/^.*) //' "/proc/$1/stat" | cut -c1)" != Z ]
}

# cs_swanctl DIR COMMAND [ARGS]...: swanctl against the charon of DIR,
# e.g. cs_swanctl DIR --list-sas.
cs_swanctl() {
	_d=$1; _c=$2; shift 2
	STRONGSWAN_CONF=$_d/strongswan.conf swanctl "$_c" --uri "unix://$_d/charon.vici" "$@"
}

# cs_load DIR TEMPLATE [VAR=VALUE]...: render TEMPLATE (a path, or a name in
# tests/interop/swanctl/ such as psk-responder) into DIR/swanctl/swanctl.conf
# and load it (connections and secrets) into the charon of DIR.
# Special variables (not placeholders): CERT_FILE, KEY_FILE, CA_FILE are
# copied into DIR/swanctl/x509, private, x509ca (CERT then defaults to the
# certificate's file name). Defaults: LOCAL_TS/REMOTE_TS dynamic, ENCAP no,
# REMOTE_ADDRS %any, IKE and ESP proposals: every one our endpoints have.
cs_load() {
	local d tpl sw kv
	d=$1; tpl=$2; shift 2
	case $tpl in */*) ;; *) tpl=$CS_HOME/swanctl/$tpl.conf.in ;; esac
	sw=$d/swanctl
	rm -rf "$sw"
	mkdir -p "$sw/x509" "$sw/x509ca" "$sw/private" "$sw/conf.d" || return 1
	# defaults last: cs_render's first substitution of a name wins
	set -- "$@" IKE_PROPOSALS="${CS_IKE_ALL}" ESP_PROPOSALS="${CS_ESP_ALL}" \
	    LOCAL_TS=dynamic REMOTE_TS=dynamic ENCAP=no REMOTE_ADDRS=%any \
	    LOCAL_ADDRS=%any
	for kv in "$@"; do
		case $kv in
		CERT_FILE=*) cp "${kv#*=}" "$sw/x509/" || return 1
			set -- "$@" CERT="$(basename "${kv#*=}")" ;;
		KEY_FILE=*) cp "${kv#*=}" "$sw/private/" || return 1 ;;
		CA_FILE=*) cp "${kv#*=}" "$sw/x509ca/" || return 1 ;;
		esac
	done
	for kv in "$@"; do
		case $kv in CERT_FILE=*|KEY_FILE=*|CA_FILE=*) ;; *) set -- "$@" "$kv" ;; esac
		shift
	done
	cs_render "$tpl" "$sw/swanctl.conf" "$@" || return 1
	chmod 600 "$sw/swanctl.conf"
	SWANCTL_DIR=$sw cs_swanctl "$d" --load-all --clear --noprompt >"$d/load.log" 2>&1 || {
		cs_log "swanctl --load-all failed: $(tail -n 5 "$d/load.log")"
		return 1
	}
}

# Every proposal our endpoints implement (ENCR_AES_CBC-256 + HMAC-SHA2-256-128
# or AES-GCM-16-256, PRF-HMAC-SHA2-256, DH 14/19/31).
CS_IKE_ALL=aes256-sha256-modp2048-ecp256-curve25519,aes256gcm16-prfsha256-modp2048-ecp256-curve25519
CS_ESP_ALL=aes256gcm16,aes256-sha256

# cs_initiate DIR [TIMEOUT_S]: charon of DIR initiates Child SA "net" (and so
# the IKE SA "ike"); 0 when both are up.
cs_initiate() {
	cs_swanctl "$1" --initiate --child net --timeout "${2:-10}" >"$1/initiate.log" 2>&1
}

# cs_terminate DIR: delete the IKE SA "ike" (sends INFORMATIONAL Delete).
cs_terminate() {
	cs_swanctl "$1" --terminate --ike ike --timeout "${2:-5}" >"$1/terminate.log" 2>&1
}

# cs_sas DIR: swanctl --list-sas --raw (one line per IKE SA).
cs_sas() { cs_swanctl "$1" --list-sas --raw 2>/dev/null | grep '^list-sa event'; }

# cs_line_ike KEY / cs_line_child KEY: a field of the IKE SA / of its first
# Child SA in one raw swanctl line on stdin (a list-sas line or a
# --monitor-sa event). IKE: state, encr-alg, encr-keysize, integ-alg,
# prf-alg, dh-group, local-id, remote-id, local-port, nat-any...; Child:
# state, mode, protocol, encap, encr-alg, encr-keysize, integ-alg,
# bytes-in, packets-out, local-ts...
cs_line_ike() {
	case $1 in	# IDs may hold spaces (DNs): up to the next field
	local-id) sed -n 's/.* local-id=\(.*\) remote-host=.*/\1/p' ;;
	remote-id) sed -n 's/ initiator-spi=.*//; s/ initiator=yes$//; s/.* remote-id=//p' ;;
	*) sed 's/child-sas {.*//' | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1 ;;
	esac
}
cs_line_child() {
	sed -n 's/.*child-sas {//p' | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1
}
# cs_ike_get DIR KEY / cs_child_get DIR KEY: the same for the first IKE SA
# charon of DIR has now.
cs_ike_get() { cs_sas "$1" | head -n 1 | cs_line_ike "$2"; }
cs_child_get() { cs_sas "$1" | head -n 1 | cs_line_child "$2"; }

# cs_line_ike_summary / cs_line_child_summary (line on stdin), and
# cs_ike_summary DIR / cs_child_summary DIR: "STATE ENCR-KEYSIZE/INTEG/PRF/DH",
# e.g. "ESTABLISHED AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048"
# (GCM: no INTEG part); Child SA: "INSTALLED AES_GCM_16-256".
cs_line_ike_summary() {
	local l i
	l=$(cat)
	i=$(echo "$l" | cs_line_ike integ-alg)
	echo "$(echo "$l" | cs_line_ike state) $(echo "$l" | cs_line_ike encr-alg)-$(echo "$l" | cs_line_ike encr-keysize)${i:+/$i}/$(echo "$l" | cs_line_ike prf-alg)/$(echo "$l" | cs_line_ike dh-group)"
}
cs_line_child_summary() {
	local l i
	l=$(cat)
	i=$(echo "$l" | cs_line_child integ-alg)
	echo "$(echo "$l" | cs_line_child state) $(echo "$l" | cs_line_child encr-alg)-$(echo "$l" | cs_line_child encr-keysize)${i:+/$i}"
}
cs_ike_summary() { cs_sas "$1" | head -n 1 | cs_line_ike_summary; }
cs_child_summary() { cs_sas "$1" | head -n 1 | cs_line_child_summary; }

# cs_monitor_start DIR FILE: swanctl --monitor-sa --raw into FILE (line
# buffered), for SAs that come and go faster than a poll of --list-sas
# (a peer that deletes right after it established). Returns when charon has
# registered it. cs_monitor_stop DIR. Events: "ike-updown event {up=yes
# ike {...}}", "child-updown event {up=yes ike {... child-sas {...}}}", and
# the same without up=yes when they go (state=DELETING, tasks-passive=
# [IKE_DELETE] when the peer sent the Delete).
cs_monitor_start() {
	local n i
	n=$(grep -c 'registered for: child-updown' "$1/charon.log" 2>/dev/null)
	STRONGSWAN_CONF=$1/strongswan.conf stdbuf -oL swanctl --monitor-sa \
	    --uri "unix://$1/charon.vici" --raw >"$2" 2>&1 &
	echo $! >"$1/monitor.pid"
	cs_reg "pid $!"
	i=0
	while [ "$(grep -c 'registered for: child-updown' "$1/charon.log" 2>/dev/null)" -le "${n:-0}" ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || return 1
		sleep 0.02
	done
}
cs_monitor_stop() {
	[ -f "$1/monitor.pid" ] || return 0
	kill "$(cat "$1/monitor.pid")" 2>/dev/null
	wait "$(cat "$1/monitor.pid")" 2>/dev/null
	rm -f "$1/monitor.pid"
	return 0
}
# cs_ev_up FILE: the first Child SA up event (IKE and Child SA fields).
cs_ev_up() { grep -m 1 '^child-updown event {up=yes' "$1"; }
# cs_ev_peer_delete FILE: 0 if an IKE SA went down by the peer's Delete.
cs_ev_peer_delete() {
	grep '^ike-updown event {ike' "$1" | grep -q 'tasks-passive=\[[^]]*IKE_DELETE'
}

# cs_mkcert PKI NAME CN SAN: PKI/NAME.crt + .key, ECDSA P-256, signed by
# PKI/ca.crt + ca.key (certs/mkcerts.sh's CA), subject "O=qkd-ipsec test,
# CN=CN", with SAN (openssl syntax, e.g. "DNS:n3iwf.test,IP:10.99.0.1"):
# IKE IDs that certs/mkcerts.sh's certificates (SAN 127.0.0.1/localhost,
# CN = SAE/KME names) do not carry.
cs_mkcert() {
	[ -f "$1/$2.crt" ] && return 0
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$1/$2.key" 2>/dev/null || return 1
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=%s\n' \
	    "$4" >"$1/$2.ext"
	openssl req -new -key "$1/$2.key" -subj "/O=qkd-ipsec test/CN=$3" 2>/dev/null |
	    openssl x509 -req -CA "$1/ca.crt" -CAkey "$1/ca.key" \
		-set_serial "0x$(openssl rand -hex 8)" -days 30 -sha256 \
		-extfile "$1/$2.ext" -out "$1/$2.crt" 2>/dev/null || return 1
	rm -f "$1/$2.ext"
}

# cs_ike_name PROPOSAL: what cs_ike_summary shows for a one-proposal
# keyword, e.g. aes256-sha256-modp2048 ->
# AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048.
# cs_esp_name: aes256gcm16 -> AES_GCM_16-256, aes256-sha256 ->
# AES_CBC-256/HMAC_SHA2_256_128.
cs_ike_name() {
	local e g
	case $1 in
	aes256gcm16-*) e=AES_GCM_16-256/PRF_HMAC_SHA2_256 ;;
	aes256-sha256-*) e=AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256 ;;
	*) e="?$1" ;;
	esac
	case $1 in
	*-modp2048) g=MODP_2048 ;; *-ecp256) g=ECP_256 ;; *-curve25519) g=CURVE_25519 ;;
	*) g="?$1" ;;
	esac
	echo "$e/$g"
}
cs_esp_name() {
	case ${1%-*esn} in
	aes256gcm16) echo AES_GCM_16-256 ;;
	aes256-sha256) echo AES_CBC-256/HMAC_SHA2_256_128 ;;
	*) echo "?$1" ;;
	esac
}

# cs_stop DIR: SIGTERM the charon of DIR (SIGKILL after 5 s); its tmpfs
# /run goes with its mount namespace.
cs_stop() {
	local p i
	[ -f "$1/charon.pid" ] || return 0
	p=$(cat "$1/charon.pid")
	if cs_alive "$p" && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = charon ]; then
		kill -TERM "$p" 2>/dev/null
		i=0
		while cs_alive "$p" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
		cs_alive "$p" && kill -KILL "$p" 2>/dev/null
	fi
	wait "$p" 2>/dev/null
	rm -f "$1/charon.pid"
	return 0
}

# cs_cleanup [REGFILE]: undo, newest first, what was recorded in CS_REG.
cs_cleanup() {
	local r what arg
	r=${1:-${CS_REG:-}}
	[ -n "$r" ] && [ -f "$r" ] || return 0
	sed -n '1!G;h;$p' "$r" | while read -r what arg; do
		case $what in
		charon) cs_stop "$arg" ;;
		pid) [ "$(cat "/proc/$arg/comm" 2>/dev/null)" = swanctl ] &&
			kill "$arg" 2>/dev/null ;;
		ns) cs_ns_del "$arg" ;;
		link) ip link del "$arg" 2>/dev/null ;;
		esac
	done
	: >"$r"
}

# Command-line use.
if [ "$(basename "$0")" = charon.sh ]; then
	set -u
	cmd=${1:-}; [ $# -gt 0 ] && shift
	case $cmd in
	install) cs_install ;;
	netns-add) cs_ns_add "$@" ;;
	netns-del) cs_ns_del "$@" ;;
	link) cs_link "$@" ;;
	start) cs_start "$@" && echo "charon up in $(cat "$1/start_ms") ms" ;;
	load) cs_load "$@" ;;
	swanctl) cs_swanctl "$@" ;;
	stop) cs_stop "$@" ;;
	cleanup) cs_cleanup "$@" ;;
	selftest) exec sh "$CS_HOME/selftest.sh" "$@" ;;
	*) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
fi
