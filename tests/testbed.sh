#!/bin/sh
# One-command local testbed on loopback: KME A and KME B (qkd-sim), paired by
# an emulated QKD link, and kmsd A and kmsd B in front of them, with the test
# PKI from certs/.
#
#   tests/testbed.sh up DIR             start; writes DIR/testbed.env
#   tests/testbed.sh up DIR --tunnel [--mode psk|cert|qkd|qkd+dh]
#                                       ... and the NWu topology (see below)
#   tests/testbed.sh down DIR           stop everything started in DIR
#   tests/testbed.sh stop UNIT DIR      stop one daemon (SIGTERM)
#   tests/testbed.sh kill UNIT DIR      kill one daemon (SIGKILL)
#   tests/testbed.sh start UNIT DIR     start it again on the same ports
#   UNIT: a or b (KME A / KME B), kmsd-a or kmsd-b
#
# Environment: KEY_RATE (bits/s), MAX_KEY_COUNT, MAX_KEY_PER_REQUEST,
# STATE_DIR (KME keys kept in SQLite there, so they survive restarts),
# KEY_TTL_S, MAX_KEYS_PER_PAIR (KMEs' assigned keys),
# POOL_LOW, POOL_HIGH, POOL_TTL_S, POOL_BATCH, POOL_LEASE (kmsd pools), NO_KMSD=1 (KMEs only),
# BINDIR (default bin), PKI (default certs/out), LOG_LEVEL.
#
# --tunnel: three network namespaces UE, N3IWF, DN (tests/netns.sh: NWu
# link UE<->N3IWF on NWU_NET.0/24, N6 link N3IWF<->DN on N6_NET.0/24, the
# DN routing UE_INNER_PREFIX back via the N3IWF), a TCP sink in the DN on
# DN_ADDR:DN_TCP_PORT (one "bytes=N sha256=HEX" line per connection in
# DN_SINK_OUT), kmsd A reachable as KMSD_A_URL inside the N3IWF namespace
# and kmsd B as KMSD_B_URL inside the UE namespace (a relay through a unix
# socket: kmsd stays on 127.0.0.1 of the root namespace), then start_tunnel
# (ike-n3iwf in the N3IWF namespace, ike-ue held up in the UE namespace,
# the QKD-keyed tunnel between them) in IKE mode --mode (default qkd). testbed.env gets UE_NETNS,
# N3IWF_NETNS, DN_NETNS, DN_ADDR, UE_INNER_ADDR, NWU_IFACE, NWU_NETNS,
# IKE_MODE and the rest of tests/netns.sh's names. `down` removes it all.
#
# Identities: with kmsd (the default), each KME knows its site's SAEs only by
# kmsd's own client certificates (CN kmsd-a.sae-a -> SAE sae-a, ...,
# `sae_map_only = yes`), as a KMS with registered SAEs would: an SAE that
# skips kmsd and calls the KME with its own certificate gets 401. With
# NO_KMSD=1 the KMEs take the SAEs' certificates directly. testbed.env's
# KME_SAE_{A,B,X}_{CERT,KEY} are the certificates the KMEs accept.
set -eu
cmd=${1:-}
top=$(cd "$(dirname "$0")/.." && pwd)
BINDIR=${BINDIR:-bin}
case $BINDIR in /*) ;; *) BINDIR=$top/$BINDIR ;; esac
PKI=${PKI:-$top/certs/out}

die() { echo "testbed: $*" >&2; exit 1; }

# wait_file FILE PID: until FILE exists, or the process died.
wait_file() {
	i=0
	while [ ! -s "$1" ]; do
		alive "$2" || return 1
		i=$((i + 1))
		[ $i -lt 200 ] || return 1
		sleep 0.05
	done
}

# unit NAME: kme-a/kme-b/kmsd-a/kmsd-b from the command-line name.
unit() {
	case $1 in
	a|kme-a) echo kme-a ;;
	b|kme-b) echo kme-b ;;
	kmsd-a|kmsd-b) echo "$1" ;;
	*) die "unknown unit \"$1\" (a, b, kmsd-a or kmsd-b)" ;;
	esac
}

# alive PID: running and not a zombie (nobody may reap our orphans here).
alive() {
	[ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/^.*) //' "/proc/$1/stat" | cut -c1)
	[ "$state" != Z ]
}

getvar() { sed -n "s/^$1=//p" "$2"; }

# start_daemon BIN NAME WHAT DIR: start BIN with DIR/NAME.conf, its log in
# DIR/NAME.log, its PID in DIR/NAME.pid; waits for its ready file.
start_daemon() {
	dir=$4
	rm -f "$dir/$2.ready"
	"$BINDIR/$1" --config "$dir/$2.conf" \
		--ready-file "$dir/$2.ready" >>"$dir/$2.log" 2>&1 &
	echo $! > "$dir/$2.pid"
	wait_file "$dir/$2.ready" "$(cat "$dir/$2.pid")" ||
		die "$3 did not start; see $dir/$2.log: $(tail -n 3 "$dir/$2.log")"
}
# start_kme SIDE DIR: start qkd-sim for site a or b using DIR/kme-SIDE.conf.
start_kme() { start_daemon qkd-sim "kme-$1" "KME $1" "$2"; }
# start_kmsd SIDE DIR: start kmsd for site a or b using DIR/kmsd-SIDE.conf.
start_kmsd() { start_daemon kmsd "kmsd-$1" "kmsd $1" "$2"; }

# write_kmsd_conf SIDE DIR KME_URL API_PORT METRICS_PORT: kmsd-SIDE.conf
write_kmsd_conf() {
	side=$1; dir=$2
	state=${STATE_DIR:-$dir}
	{
		echo "[kmsd]"
		echo "id = kmsd-$side"
		echo "listen = 127.0.0.1:$4"
		echo "metrics_listen = 127.0.0.1:$5"
		echo "metrics_sae = prometheus"
		echo "cert = $PKI/kmsd-$side.crt"
		echo "key = $PKI/kmsd-$side.key"
		echo "ca = $PKI/ca.crt"
		echo "db = $state/kmsd-$side.db"
		echo "kek_file = $state/kmsd-$side.kek"
		echo "log_level = ${LOG_LEVEL:-info}"
		echo "[upstream]"
		echo "mode = hardware"
		echo "url = $3"
		echo "ca = $PKI/ca.crt"
		echo "[pool]"
		echo "low = ${POOL_LOW:-256}"
		echo "high = ${POOL_HIGH:-1024}"
		echo "ttl_s = ${POOL_TTL_S:-3600}"
		echo "batch = ${POOL_BATCH:-128}"
		echo "lease = ${POOL_LEASE:-256}"
		if [ "$side" = a ]; then
			echo "[sae sae-a]"
			echo "cert = $PKI/kmsd-a.sae-a.crt"
			echo "key = $PKI/kmsd-a.sae-a.key"
			echo "peers = sae-b, sae-x"
			echo "pool = sae-b"
		else
			echo "[sae sae-b]"
			echo "cert = $PKI/kmsd-b.sae-b.crt"
			echo "key = $PKI/kmsd-b.sae-b.key"
			echo "peers = sae-a"
			echo "[sae sae-x]"
			echo "cert = $PKI/kmsd-b.sae-x.crt"
			echo "key = $PKI/kmsd-b.sae-x.key"
			echo "peers = sae-a"
		fi
	} > "$dir/kmsd-$side.conf"
}

write_conf() {	# side id peer_id saes role api_port link_line metrics_port
	side=$1; dir=$2
	{
		echo "[kme]"
		echo "id = $3"
		echo "listen = 127.0.0.1:$7"
		echo "cert = $PKI/$3.crt"
		echo "key = $PKI/$3.key"
		echo "ca = $PKI/ca.crt"
		echo "saes = $5"
		[ -n "${NO_KMSD:-}" ] || echo "sae_map_only = yes"
		echo "max_key_count = ${MAX_KEY_COUNT:-100000}"
		echo "max_key_per_request = ${MAX_KEY_PER_REQUEST:-128}"
		echo "key_ttl_s = ${KEY_TTL_S:-7200}"
		echo "max_keys_per_pair = ${MAX_KEYS_PER_PAIR:-100000}"
		echo "metrics_listen = 127.0.0.1:${9:-0}"
		echo "log_level = ${LOG_LEVEL:-info}"
		if [ -n "${STATE_DIR:-}" ]; then
			echo "db = $STATE_DIR/$3.db"
			echo "kek_file = $STATE_DIR/$3.kek"
		fi
		echo "[link]"
		echo "role = $6"
		echo "peer_id = $4"
		echo "key_rate = ${KEY_RATE:-1000000}"
		echo "$8"
		if [ -z "${NO_KMSD:-}" ]; then
			echo "[sae_map]"
			for sae in $(echo "$5" | tr , ' '); do
				echo "kmsd-$side.$sae = $sae"
			done
		fi
	} > "$dir/kme-$side.conf"
}

# stop_pid FILE SIGNAL: signal the process and wait until it is gone.
stop_pid() {
	[ -f "$1" ] || return 0
	pid=$(cat "$1")
	if kill -"$2" "$pid" 2>/dev/null; then
		i=0
		while alive "$pid" && [ $i -lt 100 ]; do
			sleep 0.05; i=$((i + 1))
		done
		alive "$pid" && kill -KILL "$pid" 2>/dev/null
	fi
	rm -f "$1"
	return 0
}

up() {
	dir=$1
	[ -x "$BINDIR/qkd-sim" ] || die "$BINDIR/qkd-sim not built (run make)"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	[ -n "${STATE_DIR:-}" ] && mkdir -p "$STATE_DIR"
	sh "$top/certs/mkcerts.sh" "$PKI"
	# A is the transmitter and listens for the link; B connects to it.
	write_conf a "$dir" kme-a kme-b sae-a transmitter 0 "listen = 127.0.0.1:0"
	start_kme a "$dir"
	a_api=$(getvar api_port "$dir/kme-a.ready")
	a_link=$(getvar link_port "$dir/kme-a.ready")
	a_ops=$(getvar metrics_port "$dir/kme-a.ready")
	# Pin A's ports so that a restart comes back on the same ones.
	write_conf a "$dir" kme-a kme-b sae-a transmitter "$a_api" "listen = 127.0.0.1:$a_link" "$a_ops"
	write_conf b "$dir" kme-b kme-a "sae-b,sae-x" receiver 0 "peer = 127.0.0.1:$a_link"
	start_kme b "$dir"
	b_api=$(getvar api_port "$dir/kme-b.ready")
	b_ops=$(getvar metrics_port "$dir/kme-b.ready")
	write_conf b "$dir" kme-b kme-a "sae-b,sae-x" receiver "$b_api" "peer = 127.0.0.1:$a_link" "$b_ops"
	kmsd_a=""; kmsd_b=""; ops_a=""; ops_b=""
	kme_a=sae-a; kme_b=sae-b; kme_x=sae-x
	[ -n "${NO_KMSD:-}" ] || { kme_a=kmsd-a.sae-a; kme_b=kmsd-b.sae-b; kme_x=kmsd-b.sae-x; }
	if [ -z "${NO_KMSD:-}" ]; then
		for side in a b; do
			[ $side = a ] && url=https://127.0.0.1:$a_api || url=https://127.0.0.1:$b_api
			write_kmsd_conf $side "$dir" "$url" 0 0
			start_kmsd $side "$dir"
			api=$(getvar api_port "$dir/kmsd-$side.ready")
			ops=$(getvar metrics_port "$dir/kmsd-$side.ready")
			write_kmsd_conf $side "$dir" "$url" "$api" "$ops"
			eval "kmsd_$side=https://127.0.0.1:$api; ops_$side=http://127.0.0.1:$ops"
		done
	fi
	cat > "$dir/testbed.env" <<EOT
KMSD_A_URL=$kmsd_a
KMSD_B_URL=$kmsd_b
KMSD_A_OPS=$ops_a
KMSD_B_OPS=$ops_b
KME_A_URL=https://127.0.0.1:$a_api
KME_B_URL=https://127.0.0.1:$b_api
KME_A_OPS=http://127.0.0.1:$a_ops
KME_B_OPS=http://127.0.0.1:$b_ops
KME_A_ID=kme-a
KME_B_ID=kme-b
CA=$PKI/ca.crt
SAE_A_ID=sae-a
SAE_A_CERT=$PKI/sae-a.crt
SAE_A_KEY=$PKI/sae-a.key
SAE_B_ID=sae-b
SAE_B_CERT=$PKI/sae-b.crt
SAE_B_KEY=$PKI/sae-b.key
SAE_X_ID=sae-x
SAE_X_CERT=$PKI/sae-x.crt
SAE_X_KEY=$PKI/sae-x.key
KME_SAE_A_CERT=$PKI/$kme_a.crt
KME_SAE_A_KEY=$PKI/$kme_a.key
KME_SAE_B_CERT=$PKI/$kme_b.crt
KME_SAE_B_KEY=$PKI/$kme_b.key
KME_SAE_X_CERT=$PKI/$kme_x.crt
KME_SAE_X_KEY=$PKI/$kme_x.key
ROGUE_CERT=$PKI/rogue.crt
ROGUE_KEY=$PKI/rogue.key
EOT
	# Ready means the link is up and the first keys are there.
	. "$dir/testbed.env"
	i=0
	while :; do
		n=$(curl -s --cacert "$CA" --cert "$KME_SAE_A_CERT" --key "$KME_SAE_A_KEY" \
			"$KME_A_URL/api/v1/keys/sae-b/status" |
			sed -n 's/.*"stored_key_count": *\([0-9]*\).*/\1/p')
		[ "${n:-0}" -gt 0 ] && break
		i=$((i + 1))
		[ $i -lt 200 ] || die "the QKD link did not come up; see $dir/kme-*.log"
		sleep 0.05
	done
	# ... and kmsd A's pool has its first keys.
	[ -n "$kmsd_a" ] || return 0
	i=0
	until curl -s "$ops_a/healthz" | grep -q '"status":"ok"' &&
	    ! curl -s "$ops_a/healthz" | grep -q '"keys":0'; do
		i=$((i + 1))
		[ $i -lt 200 ] || die "kmsd A's pool did not fill; see $dir/kmsd-a.log"
		sleep 0.05
	done
}

# --- --tunnel: the NWu topology and the IKE endpoints in it ---
. "$top/tests/netns.sh"
TOOLDIR=${TOOLDIR:-$top/${BUILD:-build}/tools}
case $TOOLDIR in /*) ;; *) TOOLDIR=$top/$TOOLDIR ;; esac
DN_TCP_PORT=${DN_TCP_PORT:-5001}

# wait_ready FILE PID WHAT LOG: wait_file, or die with LOG's tail.
wait_ready() {
	wait_file "$1" "$2" || die "$3 did not start; see $4: $(tail -n 3 "$4")"
}

# tunnel_up DIR MODE: namespaces, DN sink, kmsd relays, start_tunnel; then
# the names into DIR/testbed.env.
tunnel_up() {
	dir=$1
	command -v socat >/dev/null || die "socat missing (run mk/deps.sh)"
	[ -x "$TOOLDIR/tcpsink" ] || die "$TOOLDIR/tcpsink not built (run make)"
	nt_up "$dir" || die "network namespaces: setup failed"
	. "$dir/netns.env"
	rm -f "$dir/dn-sink.ready" "$dir/dn-sink.out"
	nt_bg "$dir" dn-sink "$DN_NETNS" "$TOOLDIR/tcpsink" -l "$DN_ADDR:$DN_TCP_PORT" \
	    -o "$dir/dn-sink.out" -r "$dir/dn-sink.ready"
	wait_ready "$dir/dn-sink.ready" "$NT_PID" "the DN's TCP sink" "$dir/dn-sink.log"
	. "$dir/testbed.env"
	nt_relay "$dir" "$N3IWF_NETNS" "${KMSD_A_URL##*:}" || die "kmsd A relay failed"
	nt_relay "$dir" "$UE_NETNS" "${KMSD_B_URL##*:}" || die "kmsd B relay failed"
	{
		cat "$dir/netns.env"
		echo "DN_TCP_PORT=$DN_TCP_PORT"
		echo "DN_SINK_OUT=$dir/dn-sink.out"
		echo "IKE_MODE=$2"
		echo "TCPSINK=$TOOLDIR/tcpsink"
	} >>"$dir/testbed.env"
	start_tunnel "$dir" "$2"
}

# ===== start_tunnel DIR MODE: THE INTEGRATOR'S SLOT (issue 10) =====
# ike-n3iwf in the N3IWF namespace on N3IWF_NWU_ADDR:500/4500 with the
# tunnel (TUN on NAS_IP, UE_INNER_PREFIX routed into it, NAS/TCP server),
# and ike-ue from the UE namespace held up until `down` (TUN on its CP
# address UE_INNER_ADDR, default route into it), in IKE mode MODE, profile
# nwu, keys from kmsd A / kmsd B through the relays; waits for ike-ue's
# "tunnel up" line and for DN_ADDR to answer ping from the UE namespace.
# IKE_ARGS (environment): more flags for both (--cipher, --qkd-schedule
# ...), UE_ARGS / N3IWF_ARGS for one of them (lifetimes ...). Status files (SAs and counters, rewritten every
# second): UE_STATUS, N3IWF_STATUS.
start_tunnel() {
	dir=$1; mode=$2
	. "$dir/testbed.env"
	rm -f "$dir/ike-n3iwf.ready" "$dir/ue.status" "$dir/n3iwf.status"
	# shellcheck disable=SC2086 # IKE_ARGS: several flags
	nt_bg "$dir" ike-n3iwf "$N3IWF_NETNS" "$BINDIR/ike-n3iwf" --mode "$mode" \
	    --profile nwu --listen "$N3IWF_NWU_ADDR:500" --natt-port 4500 \
	    --inner-ip "$UE_INNER_ADDR" --ready-file "$dir/ike-n3iwf.ready" \
	    --log-level "${LOG_LEVEL:-info}" --psk test-psk-1 \
	    --cert "$SAE_A_CERT" --key "$SAE_A_KEY" --ca "$CA" --peer-sae sae-b \
	    --kmsd-url "$KMSD_A_URL" --kmsd-cert "$SAE_A_CERT" \
	    --kmsd-key "$SAE_A_KEY" --kmsd-ca "$CA" \
	    --tunnel yes --tun-route "$UE_INNER_PREFIX" \
	    --status-file "$dir/n3iwf.status" ${IKE_ARGS:-} ${N3IWF_ARGS:-}
	wait_ready "$dir/ike-n3iwf.ready" "$NT_PID" ike-n3iwf "$dir/ike-n3iwf.log"
	# shellcheck disable=SC2086
	nt_bg "$dir" ike-ue "$UE_NETNS" "$BINDIR/ike-ue" --mode "$mode" \
	    --profile nwu --peer "$N3IWF_NWU_ADDR:500" --local "$UE_NWU_ADDR" \
	    --log-level "${LOG_LEVEL:-info}" --psk test-psk-1 --ca "$CA" \
	    --cert "$SAE_B_CERT" --key "$SAE_B_KEY" --peer-sae sae-a \
	    --kmsd-url "$KMSD_B_URL" --kmsd-cert "$SAE_B_CERT" \
	    --kmsd-key "$SAE_B_KEY" --kmsd-ca "$CA" \
	    --tunnel yes --hold 0 --status-file "$dir/ue.status" ${IKE_ARGS:-} ${UE_ARGS:-}
	ue_pid=$NT_PID
	i=0
	until grep -q "tunnel up: inner $UE_INNER_ADDR" "$dir/ike-ue.log" 2>/dev/null; do
		alive "$ue_pid" && [ $i -lt 300 ] ||
		    die "ike-ue ($mode): no tunnel; see $dir/ike-ue.log: $(tail -n 3 "$dir/ike-ue.log")"
		i=$((i + 1)); sleep 0.05
	done
	i=0
	until nt_exec "$UE_NETNS" ping -c 1 -W 1 "$DN_ADDR" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 10 ] || die "ike-ue ($mode): tunnel up but $DN_ADDR does not answer ping"
	done
	{
		echo "UE_STATUS=$dir/ue.status"
		echo "N3IWF_STATUS=$dir/n3iwf.status"
		echo "UE_LOG=$dir/ike-ue.log"
		echo "N3IWF_LOG=$dir/ike-n3iwf.log"
		echo "UE_TUN=qkd0"
	} >>"$dir/testbed.env"
}
# ===== end of the integrator's slot =====

dir=${2:-}
case $cmd in
up)	[ -n "$dir" ] || die "usage: testbed.sh up DIR [--tunnel [--mode MODE]]"
	shift 2
	tunnel=""; ike_mode=qkd
	while [ $# -gt 0 ]; do
		case $1 in
		--tunnel) tunnel=1 ;;
		--mode) [ $# -ge 2 ] || die "--mode needs a value"; ike_mode=$2; shift ;;
		*) die "unknown option \"$1\"" ;;
		esac
		shift
	done
	case $ike_mode in psk|cert|qkd|qkd+dh) ;; *) die "unknown --mode \"$ike_mode\"" ;; esac
	[ -z "$tunnel" ] || [ -z "${NO_KMSD:-}" ] || die "--tunnel needs kmsd (no NO_KMSD)"
	up "$dir"
	[ -z "$tunnel" ] || tunnel_up "$(cd "$dir" && pwd)" "$ike_mode" ;;
down)	[ -n "$dir" ] || die "usage: testbed.sh down DIR"
	[ ! -d "$dir" ] || nt_down "$dir"
	for u in kmsd-b kmsd-a kme-b kme-a; do stop_pid "$dir/$u.pid" TERM; done ;;
stop|kill|start)
	u=$(unit "${2:-}"); dir=${3:-}
	[ -n "$dir" ] || die "usage: testbed.sh $cmd UNIT DIR"
	case $cmd in
	stop)	stop_pid "$dir/$u.pid" TERM ;;
	kill)	stop_pid "$dir/$u.pid" KILL ;;
	start)	case $u in
		kme-*) start_kme "${u#kme-}" "$dir" ;;
		kmsd-*) start_kmsd "${u#kmsd-}" "$dir" ;;
		esac ;;
	esac ;;
*)	sed -n '2,/^set -eu/{/^#/s/^# \{0,1\}//p}' "$0"; [ "$cmd" = -h ] || [ "$cmd" = --help ] ;;
esac
