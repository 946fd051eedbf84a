#!/bin/sh
# One-command local testbed on loopback: KME A and KME B (qkd-sim), paired by
# an emulated QKD link, with the test PKI from certs/.
#
#   tests/testbed.sh up DIR            start; writes DIR/testbed.env
#   tests/testbed.sh down DIR          stop everything started in DIR
#   tests/testbed.sh stop a|b DIR      stop one KME (SIGTERM)
#   tests/testbed.sh kill a|b DIR      kill one KME (SIGKILL)
#   tests/testbed.sh start a|b DIR     start it again on the same ports
#
# Environment: KEY_RATE (bits/s), MAX_KEY_COUNT, MAX_KEY_PER_REQUEST,
# STATE_DIR (keys kept in SQLite there, so they survive restarts),
# BINDIR (default bin), PKI (default certs/out), LOG_LEVEL.
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
		kill -0 "$2" 2>/dev/null || return 1
		i=$((i + 1))
		[ $i -lt 200 ] || return 1
		sleep 0.05
	done
}

getvar() { sed -n "s/^$1=//p" "$2"; }

# start_kme SIDE DIR: start qkd-sim for site a or b using DIR/kme-SIDE.conf.
start_kme() {
	side=$1; dir=$2
	rm -f "$dir/kme-$side.ready"
	"$BINDIR/qkd-sim" --config "$dir/kme-$side.conf" \
		--ready-file "$dir/kme-$side.ready" >>"$dir/kme-$side.log" 2>&1 &
	echo $! > "$dir/kme-$side.pid"
	wait_file "$dir/kme-$side.ready" "$(cat "$dir/kme-$side.pid")" ||
		die "KME $side did not start; see $dir/kme-$side.log: $(tail -n 3 "$dir/kme-$side.log")"
}

write_conf() {	# side id peer_id saes role api_port link_line
	side=$1; dir=$2
	{
		echo "[kme]"
		echo "id = $3"
		echo "listen = 127.0.0.1:$7"
		echo "cert = $PKI/$3.crt"
		echo "key = $PKI/$3.key"
		echo "ca = $PKI/ca.crt"
		echo "saes = $5"
		echo "max_key_count = ${MAX_KEY_COUNT:-100000}"
		echo "max_key_per_request = ${MAX_KEY_PER_REQUEST:-128}"
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
	} > "$dir/kme-$side.conf"
}

# stop_pid FILE SIGNAL: signal the process and wait until it is gone.
stop_pid() {
	[ -f "$1" ] || return 0
	pid=$(cat "$1")
	if kill -"$2" "$pid" 2>/dev/null; then
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.05; i=$((i + 1))
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
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
	# Pin A's ports so that a restart comes back on the same ones.
	write_conf a "$dir" kme-a kme-b sae-a transmitter "$a_api" "listen = 127.0.0.1:$a_link"
	write_conf b "$dir" kme-b kme-a "sae-b,sae-x" receiver 0 "peer = 127.0.0.1:$a_link"
	start_kme b "$dir"
	b_api=$(getvar api_port "$dir/kme-b.ready")
	write_conf b "$dir" kme-b kme-a "sae-b,sae-x" receiver "$b_api" "peer = 127.0.0.1:$a_link"
	cat > "$dir/testbed.env" <<EOT
KME_A_URL=https://127.0.0.1:$a_api
KME_B_URL=https://127.0.0.1:$b_api
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
ROGUE_CERT=$PKI/rogue.crt
ROGUE_KEY=$PKI/rogue.key
EOT
	# Ready means the link is up and the first keys are there.
	. "$dir/testbed.env"
	i=0
	while :; do
		n=$(curl -s --cacert "$CA" --cert "$SAE_A_CERT" --key "$SAE_A_KEY" \
			"$KME_A_URL/api/v1/keys/sae-b/status" |
			sed -n 's/.*"stored_key_count": *\([0-9]*\).*/\1/p')
		[ "${n:-0}" -gt 0 ] && break
		i=$((i + 1))
		[ $i -lt 200 ] || die "the QKD link did not come up; see $dir/kme-*.log"
		sleep 0.05
	done
}

dir=${2:-}
case $cmd in
up)	[ -n "$dir" ] || die "usage: testbed.sh up DIR"; up "$dir" ;;
down)	[ -n "$dir" ] || die "usage: testbed.sh down DIR"
	stop_pid "$dir/kme-b.pid" TERM; stop_pid "$dir/kme-a.pid" TERM ;;
stop|kill|start)
	side=${2:-}; dir=${3:-}
	case $side in a|b) ;; *) die "usage: testbed.sh $cmd a|b DIR" ;; esac
	[ -n "$dir" ] || die "usage: testbed.sh $cmd a|b DIR"
	case $cmd in
	stop)	stop_pid "$dir/kme-$side.pid" TERM ;;
	kill)	stop_pid "$dir/kme-$side.pid" KILL ;;
	start)	start_kme "$side" "$dir" ;;
	esac ;;
*)	sed -n '2,15s/^# \{0,1\}//p' "$0"; [ "$cmd" = -h ] || [ "$cmd" = --help ] ;;
esac
