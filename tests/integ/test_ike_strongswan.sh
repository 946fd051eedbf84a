#!/bin/sh
# Interop with strongSwan (Debian's charon 5.9.8): our endpoints with
# `--profile rfc7296` in psk, cert and qkd+dh modes establish an IKE SA and a
# Child SA with charon: our initiator (ike-ue) -> charon responder, and
# charon initiator -> our responder (ike-n3iwf).
#
# Where things run: charon in network namespace C (own /run, kernel-libipsec,
# tests/interop/charon.sh); our endpoint, and for qkd+dh the kmsd testbed it
# talks to, in namespace O; one veth pair O <-> C with two addresses of
# 10.99.N.0/30. Nothing is added to the root namespace (OURS_NS=root puts
# our side there instead, on the root end of the pair).
#
# Each case gives both sides exactly one IKE proposal (--dh, --cipher) and
# checks on charon the IKE SA ESTABLISHED and the Child SA INSTALLED with
# those algorithms (swanctl --list-sas; for ike-ue, which deletes its IKE SA
# right after it is up, the same fields from swanctl --monitor-sa), our
# endpoint's "IKE SA established" line ("..., PPK used" in qkd+dh), its exit
# status, and the Delete reaching the other side.
#
# qkd+dh (RFC 8784, PPK = a QKD key from the testbed's kmsd pair, ETSI key
# ID = PPK_ID; the initiator names it):
# - charon -> ike-n3iwf: charon plays the UE (sae-b): the test gets a key
#   with `kmsclient enc sae-a` at kmsd B and loads it into charon; ike-n3iwf
#   (sae-a, --peer-sae sae-b) gets it by PPK_ID with dec_keys at kmsd A.
# - ike-ue -> charon: charon cannot ask kmsd for the key the UE names, so the
#   test gets it first (`kmsclient enc sae-b` at kmsd A, as sae-a), loads it
#   into charon and hands only the key ID to ike-ue through $UE_PPK_HOOK
#   (default --ppk-key-id ID: "use this key, dec_keys at my kmsd with master
#   --peer-sae, instead of enc_keys"). An ike-ue without that option fails
#   the case with a "not ok" that says so.
#
# Needs root. Bounded: stops itself after LIMIT_S (170) s; every namespace
# and process it made goes on any exit (trap). Without bin/ike-ue and
# bin/ike-n3iwf, or without charon, it fails ("not ok", exit 1).
#   KEEP=1            keep the temp dir (charon's and our endpoints' logs)
#   CASES="psk cert qkd+dh"
#   IKE_UE=, IKE_N3IWF=  other binaries (tests/interop/mock/ has stand-ins
#                     made of charon, to check this script itself)
top=$(cd "$(dirname "$0")/../.." && pwd)
BINDIR=${BINDIR:-bin}
case $BINDIR in /*) ;; *) BINDIR=$top/$BINDIR ;; esac
IKE_UE=${IKE_UE:-$BINDIR/ike-ue}
IKE_N3IWF=${IKE_N3IWF:-$BINDIR/ike-n3iwf}
case $IKE_UE in /*) ;; *) IKE_UE=$top/$IKE_UE ;; esac
case $IKE_N3IWF in /*) ;; *) IKE_N3IWF=$top/$IKE_N3IWF ;; esac
for b in "$IKE_UE" "$IKE_N3IWF"; do
	[ -x "$b" ] || { echo "not ok - strongSwan interop: $b not built (make)"; exit 1; }
done
. "$top/tests/integ/lib.sh"			# cd $top; $TB; ok/nok/check
CS_HOME=$top/tests/interop
. "$top/tests/interop/charon.sh"

LIMIT_S=${LIMIT_S:-170}
CASES=${CASES:-psk cert qkd+dh}
OURS_NS=${OURS_NS:-ns}
UE_PPK_HOOK=${UE_PPK_HOOK:---ppk-key-id}
UE_ID=ue.test
N3IWF_ID=n3iwf.test
DN_PREFIX="O=qkd-ipsec test, CN="	# our endpoints' ID in cert mode: the DN
OK_RE='IKE SA established'		# our endpoints' success line

# --- cleanup on every exit; a watchdog bounds the run --------------------
CS_REG=$TB/cs.reg
OUR_PIDS=""
ike_cleanup() {
	[ -n "${WD:-}" ] && kill "$WD" 2>/dev/null
	for p in $OUR_PIDS; do cs_alive "$p" && kill -TERM "$p" 2>/dev/null; done
	for p in $OUR_PIDS; do
		i=0
		while cs_alive "$p" && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
		cs_alive "$p" && kill -KILL "$p" 2>/dev/null
	done
	sh tests/testbed.sh down "$TB" >/dev/null 2>&1	# kmsd testbed (in O)
	cs_cleanup "$CS_REG"		# charon, monitors, namespaces, veth
	tb_cleanup			# $TB (KEEP=1 keeps it)
}
trap ike_cleanup EXIT
trap 'exit 1' INT TERM
t_start=$(cs_ms)
cs_watchdog "$LIMIT_S"; WD=$CS_WD

if [ "$(id -u)" != 0 ]; then
	nok "interop test needs root (network namespaces)"
	exit 1
fi
if ! cs_install; then
	nok "install strongSwan (strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-standard-plugins): see /tmp/charon-sh-apt.log"
	exit 1
fi

# --- network: charon's namespace C, our side O ----------------------------
net=$(cs_free_net) || { nok "no free 10.99.N.0/30"; exit 1; }
C=ikeC$$
C_ADDR=$net.2		# charon
O_ADDR=$net.1		# our endpoint
cs_ns_add $C || { nok "netns $C"; exit 1; }
if [ "$OURS_NS" = root ]; then
	O=-; RUN=""
else
	O=ikeO$$; RUN="ip netns exec $O"
	cs_ns_add $O || { nok "netns $O"; exit 1; }
fi
if ! cs_link $O ikeo$$ $O_ADDR/30 $C ikec$$ $C_ADDR/30; then
	nok "veth pair $O_ADDR <-> $C_ADDR"; exit 1
fi
CD=$TB/charon
if cs_start "$CD" $C; then
	ok "charon started in namespace $C ($(cat "$CD/start_ms") ms)"
else
	nok "charon start: $(tail -n 3 "$CD/charon.log" 2>/dev/null)"; exit 1
fi

# --- credentials -----------------------------------------------------------
PKI=$TB/pki
mkdir -p "$PKI"
sh certs/mkcerts.sh certs/out >/dev/null 2>&1 && cp certs/out/ca.crt certs/out/ca.key "$PKI/" &&
    cs_mkcert "$PKI" ike-ue $UE_ID "DNS:$UE_ID" &&
    cs_mkcert "$PKI" ike-n3iwf $N3IWF_ID "DNS:$N3IWF_ID,IP:$O_ADDR,IP:$C_ADDR" ||
    { nok "IKE certificates from the test CA"; exit 1; }
rm -f "$PKI/ca.key"
PSK=$(openssl rand -hex 24)		# ASCII; both sides use its bytes

# The kmsd testbed, in O (our endpoints reach it on O's 127.0.0.1).
QKD_UP=""
qkd_up() {
	[ -n "$QKD_UP" ] && return 0
	if ! $RUN sh tests/testbed.sh up "$TB" >"$TB/up.log" 2>&1; then
		nok "kmsd testbed up: $(tail -n 3 "$TB/up.log")"; return 1
	fi
	. "$TB/testbed.env"
	QKD_UP=1
}
b64hex() { base64 -d 2>/dev/null | od -An -v -tx1 | tr -d ' \n'; }
# qkd_enc WHO(a|b) SLAVE: a new 256-bit key through enc_keys at kmsd A (as
# sae-a) or kmsd B (as sae-b): QKD_ID, QKD_HEX.
qkd_enc() {
	case $1 in
	a) set -- "$KMSD_A_URL" "$SAE_A_CERT" "$SAE_A_KEY" "$2" ;;
	b) set -- "$KMSD_B_URL" "$SAE_B_CERT" "$SAE_B_KEY" "$2" ;;
	esac
	r=$($RUN "$KMSCLIENT" --url "$1" --cert "$2" --key "$3" --ca "$CA" --json \
	    enc "$4" -s 256 2>"$TB/kmsclient.err")
	QKD_ID=$(json_get "$r" '.keys[0].key_ID')
	QKD_HEX=$(json_get "$r" '.keys[0].key' | b64hex)
	[ ${#QKD_HEX} -eq 64 ] && [ -n "$QKD_ID" ]
}

# === Our endpoints' command lines (the one place to adapt) =================
# From `ike-ue --help` / `ike-n3iwf --help`. IDs: FQDN (psk, qkd+dh); the
# certificate's subject DN (cert). --psk: its bytes are the secret.
alg_args() {	# IKE_PROPOSAL: --dh and --cipher for a charon proposal keyword
	case $1 in aes256gcm16-*) c=aes-gcm ;; *) c=aes-cbc ;; esac
	case $1 in *-modp2048) g=14 ;; *-ecp256) g=19 ;; *-curve25519) g=31 ;; esac
	echo "--dh $g --cipher $c"
}
auth_args() {	# MODE SIDE(ue|n3iwf)
	case $1 in
	psk) echo "--psk $PSK" ;;
	cert) echo "--cert $PKI/ike-$2.crt --key $PKI/ike-$2.key --ca $PKI/ca.crt" ;;
	qkd+dh)
		if [ "$2" = ue ]; then
			echo "--psk $PSK --ppk-required yes --kmsd-url $KMSD_B_URL --kmsd-cert $SAE_B_CERT --kmsd-key $SAE_B_KEY --kmsd-ca $CA --peer-sae sae-a $UE_PPK_HOOK $QKD_ID"
		else
			echo "--psk $PSK --ppk-required yes --kmsd-url $KMSD_A_URL --kmsd-cert $SAE_A_CERT --kmsd-key $SAE_A_KEY --kmsd-ca $CA --peer-sae sae-b"
		fi ;;
	esac
}
# ue_run MODE IKE_PROPOSAL LOG: one connection (IKE SA + Child SA, then
# Delete), in the foreground; UE_RC = exit status.
ue_run() {
	$RUN timeout 30 "$IKE_UE" --profile rfc7296 --mode "$1" \
	    --local "$O_ADDR" --peer "$C_ADDR:500" --id $UE_ID \
	    $(alg_args "$2") $(auth_args "$1" ue) --retransmit-tries 3 \
	    --log-level debug </dev/null >"$3" 2>&1
	UE_RC=$?
}
# n3iwf_start MODE IKE_PROPOSAL LOG: our responder in the background, until
# SIGTERM; returns when its --ready-file is written.
n3iwf_start() {
	rm -f "$TB/n3iwf.ready"
	$RUN timeout 60 "$IKE_N3IWF" --profile rfc7296 --mode "$1" \
	    --listen "$O_ADDR:500" --id $N3IWF_ID \
	    $(alg_args "$2") $(auth_args "$1" n3iwf) \
	    --ready-file "$TB/n3iwf.ready" --log-level debug </dev/null >"$3" 2>&1 &
	N3IWF_PID=$!
	OUR_PIDS="$OUR_PIDS $N3IWF_PID"
	i=0
	while [ ! -s "$TB/n3iwf.ready" ]; do
		cs_alive "$N3IWF_PID" && [ $i -lt 200 ] || return 1
		sleep 0.025; i=$((i + 1))
	done
}
# ===========================================================================

# charon's swanctl template variables: MODE ROLE(initiator|responder).
charon_vars() {
	case $1 in
	psk) echo "PSK=$PSK" ;;
	cert) s=ike-n3iwf; [ "$2" = initiator ] && s=ike-ue
		echo "CERT_FILE=$PKI/$s.crt KEY_FILE=$PKI/$s.key CA_FILE=$PKI/ca.crt" ;;
	qkd+dh) echo "PSK=$PSK PPK=0x$QKD_HEX PPK_ID=$QKD_ID" ;;
	esac
}
tpl() { if [ "$1" = qkd+dh ]; then echo ppk-$2; else echo "$1-$2"; fi; }
# peer_id MODE SIDE: the ID charon must expect from our SIDE.
peer_id() {
	if [ "$1" = cert ]; then
		if [ "$2" = ue ]; then echo "\"$DN_PREFIX$UE_ID\""; else echo "\"$DN_PREFIX$N3IWF_ID\""; fi
	elif [ "$2" = ue ]; then echo $UE_ID; else echo $N3IWF_ID; fi
}

# wait_gone: until charon has no IKE SA (3 s).
wait_gone() {
	i=0
	while [ -n "$(cs_sas "$CD")" ] && [ $i -lt 60 ]; do sleep 0.05; i=$((i + 1)); done
	[ -z "$(cs_sas "$CD")" ]
}
# stop_ours PID: SIGTERM, wait up to 5 s; STOP_RC = exit status ("killed"
# when SIGKILL was needed).
stop_ours() {
	kill -TERM "$1" 2>/dev/null
	i=0
	while cs_alive "$1" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	if cs_alive "$1"; then
		kill -KILL "$1" 2>/dev/null; wait "$1" 2>/dev/null; STOP_RC=killed
	else
		wait "$1"; STOP_RC=$?
	fi
}
# success_line LOG: our endpoint's first success line.
success_line() { grep -m 1 -E "$OK_RE" "$1" 2>/dev/null; }

# Failures print the case's logs once (lib.sh's check/check_match call nok).
NFAIL=0; NFAIL_SEEN=0
nok() { echo "not ok - $*"; NFAIL=$((NFAIL + 1)); }
case_end() {	# OUR_LOG
	if [ $NFAIL -ne $NFAIL_SEEN ]; then
		for f in "$1" "$CD/charon.log"; do
			echo "# --- $(basename "$f"), last lines:"
			grep -v 'vici client\|vici .*request\|registered for' "$f" 2>/dev/null |
			    tail -n 15 | sed 's/^/#   /'
		done
		NFAIL_SEEN=$NFAIL
	fi
	cs_swanctl "$CD" --terminate --ike ike --force --timeout 1 >/dev/null 2>&1
	: >"$CD/charon.log"	# charon appends: one log per case
}

# Case 1: our initiator -> charon responder.
case_ue() {	# MODE IKE_PROPOSAL ESP_PROPOSAL
	m=$1; name="ike-ue -> charon, $1, $2, $3"
	log=$TB/ue-$m-$2.log; : >"$log"
	if [ "$m" = qkd+dh ]; then
		qkd_up || return
		if ! "$IKE_UE" --help 2>&1 | grep -q -- "$UE_PPK_HOOK"; then
			nok "$name: ike-ue has no $UE_PPK_HOOK: charon needs the PPK before the UE names it, see the comment at the top"
			return
		fi
		# the key for the UE's kmsd B: master sae-a, slave sae-b
		qkd_enc a sae-b || { nok "$name: a QKD key from kmsd A: $(tail -n 2 "$TB/kmsclient.err")"; return; }
	fi
	if ! cs_load "$CD" "$(tpl "$m" responder)" LOCAL_ADDRS=$C_ADDR \
	    LOCAL_ID=$N3IWF_ID REMOTE_ID="$(peer_id "$m" ue)" \
	    IKE_PROPOSALS=$2 ESP_PROPOSALS=$3 $(charon_vars "$m" responder); then
		nok "$name: load charon's config"; case_end "$log"; return
	fi
	mon=$TB/monitor-$m-$2.log
	cs_monitor_start "$CD" "$mon" || nok "$name: swanctl --monitor-sa"
	t=$(cs_ms)
	ue_run "$m" "$2" "$log"
	el=$(($(cs_ms) - t))
	sleep 0.1		# the monitor's last events
	cs_monitor_stop "$CD"
	up=$(cs_ev_up "$mon")
	if [ "$UE_RC" != 0 ] && [ -z "$up" ]; then
		nok "$name: no SA (ike-ue exit $UE_RC: $(grep -E 'error|warn' "$log" | tail -n 1))"
		case_end "$log"; return
	fi
	check "$name: ike-ue exit status" 0 "$UE_RC"
	check "$name: IKE SA on charon" "ESTABLISHED $(cs_ike_name "$2")" "$(echo "$up" | cs_line_ike_summary)"
	check "$name: Child SA on charon" "INSTALLED $(cs_esp_name "$3")" "$(echo "$up" | cs_line_child_summary)"
	check "$name: charon's view of the IKE ID" "$(peer_id "$m" ue | tr -d '"')" "$(echo "$up" | cs_line_ike remote-id)"
	check_match "$name: ike-ue reports success" "$OK_RE" "$(success_line "$log")"
	if [ "$m" = qkd+dh ]; then
		check_match "$name: ike-ue used the PPK" 'PPK used' "$(success_line "$log")"
		check "$name: charon used the PPK" yes "$(echo "$up" | cs_line_ike ppk)"
	fi
	if cs_ev_peer_delete "$mon" && wait_gone; then
		ok "$name: ike-ue's Delete reached charon"
	else
		nok "$name: ike-ue's Delete reached charon"
	fi
	echo "# $name: ike-ue ran $el ms"
	case_end "$log"
}

# Case 2: charon initiator -> our responder.
case_n3iwf() {	# MODE IKE_PROPOSAL ESP_PROPOSAL
	m=$1; name="charon -> ike-n3iwf, $1, $2, $3"
	log=$TB/n3iwf-$m-$2.log; : >"$log"
	if [ "$m" = qkd+dh ]; then
		qkd_up || return
		# charon plays the UE (sae-b), the master: enc_keys at kmsd B
		qkd_enc b sae-a || { nok "$name: a QKD key from kmsd B: $(tail -n 2 "$TB/kmsclient.err")"; return; }
		export IKE_TEST_PPK_ID=$QKD_ID	# only for tests/interop/mock
	fi
	if ! n3iwf_start "$m" "$2" "$log"; then
		nok "$name: ike-n3iwf is up (ready file)"; case_end "$log"; return
	fi
	if ! cs_load "$CD" "$(tpl "$m" initiator)" LOCAL_ADDRS=$C_ADDR \
	    REMOTE_ADDRS=$O_ADDR LOCAL_ID=$UE_ID REMOTE_ID="$(peer_id "$m" n3iwf)" \
	    IKE_PROPOSALS=$2 ESP_PROPOSALS=$3 $(charon_vars "$m" initiator); then
		nok "$name: load charon's config"; stop_ours "$N3IWF_PID"; case_end "$log"; return
	fi
	t=$(cs_ms)
	if ! cs_initiate "$CD" 10; then
		nok "$name: no SA (swanctl --initiate: $(grep -E 'failed|error|NOTIFY|notify' "$CD/initiate.log" | tail -n 2 | tr '\n' ' '))"
		stop_ours "$N3IWF_PID"; case_end "$log"; return
	fi
	ok "$name: swanctl --initiate"
	el=$(($(cs_ms) - t))
	check "$name: IKE SA on charon" "ESTABLISHED $(cs_ike_name "$2")" "$(cs_ike_summary "$CD")"
	check "$name: Child SA on charon" "INSTALLED $(cs_esp_name "$3")" "$(cs_child_summary "$CD")"
	check "$name: charon's view of the IKE ID" "$(peer_id "$m" n3iwf | tr -d '"')" "$(cs_ike_get "$CD" remote-id)"
	i=0	# the success line may come a moment after charon's
	while [ -z "$(success_line "$log")" ] && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
	check_match "$name: ike-n3iwf reports success" "$OK_RE" "$(success_line "$log")"
	if [ "$m" = qkd+dh ]; then
		check_match "$name: ike-n3iwf used the PPK" 'PPK used' "$(success_line "$log")"
		check "$name: charon used the PPK" yes "$(cs_ike_get "$CD" ppk)"
	fi
	cs_terminate "$CD"
	check "$name: charon's Delete answered" 0 $?
	if cs_alive "$N3IWF_PID"; then ok "$name: ike-n3iwf still up after the Delete"; else nok "$name: ike-n3iwf still up after the Delete"; fi
	stop_ours "$N3IWF_PID"
	check "$name: ike-n3iwf exits 0 on SIGTERM" 0 "$STOP_RC"
	echo "# $name: swanctl --initiate took $el ms"
	case_end "$log"
}

# ESP proposal = the IKE cipher: our endpoints' --cipher sets both.
for mode_ in $CASES; do
	case $mode_ in
	psk)
		case_ue psk aes256-sha256-modp2048 aes256-sha256
		case_ue psk aes256gcm16-prfsha256-ecp256 aes256gcm16
		case_ue psk aes256gcm16-prfsha256-curve25519 aes256gcm16
		case_n3iwf psk aes256-sha256-modp2048 aes256-sha256
		case_n3iwf psk aes256-sha256-ecp256 aes256-sha256
		case_n3iwf psk aes256gcm16-prfsha256-curve25519 aes256gcm16 ;;
	cert)
		case_ue cert aes256-sha256-ecp256 aes256-sha256
		case_n3iwf cert aes256gcm16-prfsha256-modp2048 aes256gcm16 ;;
	qkd+dh)
		case_ue qkd+dh aes256-sha256-curve25519 aes256-sha256
		case_n3iwf qkd+dh aes256gcm16-prfsha256-ecp256 aes256gcm16 ;;
	*) nok "unknown case $mode_" ;;
	esac
done
echo "# total $(($(cs_ms) - t_start)) ms"
