#!/bin/sh
# Interop with strongSwan (Debian's charon 5.9.8): our endpoints with
# `--profile rfc7296` in psk, cert and qkd+dh modes establish an IKE SA and a
# Child SA with charon, our initiator (ike-ue) -> charon responder and charon
# initiator -> our responder (ike-n3iwf). Charon runs in its own network
# namespace with its own /run and kernel-libipsec (tests/interop/charon.sh);
# our endpoint runs in a second namespace joined to it by a veth pair
# (OURS_NS=root: in the root namespace instead, on the root end of the pair).
# Each case restricts charon to exactly one IKE and one ESP proposal, so our
# side must pick it (as responder) or get to it (as initiator, including
# INVALID_KE_PAYLOAD when its first KE is another group), and checks on
# charon (swanctl --list-sas) the IKE SA ESTABLISHED and the Child SA
# INSTALLED with exactly those algorithms, our endpoint's success line, its
# exit status 0 after SIGTERM, and that its Delete reaches charon.
# qkd+dh: RFC 8784 PPK = a QKD key from the testbed's kmsd pair (enc_keys at
# kmsd A as sae-a, the initiator/master; the same key through `kmsclient dec`
# at kmsd B for the other side).
#
# Needs root (namespaces). Bounded: the whole file stops itself after
# LIMIT_S (170) seconds; every namespace and process it made is removed on
# any exit. Without bin/ike-ue and bin/ike-n3iwf it prints one comment line
# and exits 0 (nothing counted).
#   KEEP=1      keep the temp dir (charon logs, our endpoints' logs)
#   CASES="psk cert qkd+dh"  modes to run
#   IKE_UE=..., IKE_N3IWF=...  other endpoint binaries (default $BINDIR/...)
#   PPK_FROM=file|kmsd  how our side gets the PPK (see ppk_args below)
top=$(cd "$(dirname "$0")/../.." && pwd)
BINDIR=${BINDIR:-bin}
case $BINDIR in /*) ;; *) BINDIR=$top/$BINDIR ;; esac
IKE_UE=${IKE_UE:-$BINDIR/ike-ue}
IKE_N3IWF=${IKE_N3IWF:-$BINDIR/ike-n3iwf}
if [ ! -x "$IKE_UE" ] || [ ! -x "$IKE_N3IWF" ]; then
	echo "# ike endpoints not built yet"
	exit 0
fi
. "$top/tests/integ/lib.sh"			# cd $top; $TB; ok/nok/check; tb_up
CS_HOME=$top/tests/interop
. "$top/tests/interop/charon.sh"

LIMIT_S=${LIMIT_S:-170}
CASES=${CASES:-psk cert qkd+dh}
PPK_FROM=${PPK_FROM:-file}
OURS_NS=${OURS_NS:-ns}
[ "$PPK_FROM" = kmsd ] && OURS_NS=root	# kmsd listens on the root's 127.0.0.1
UE_ID=ue@test
N3IWF_ID=n3iwf.test
OK_RE=${OK_RE:-[Ee]stablished}	# our endpoints' success line

# --- cleanup on every exit; a watchdog bounds the run --------------------
CS_REG=$TB/cs.reg
OUR_PIDS=""
ike_cleanup() {
	[ -n "${WD:-}" ] && kill "$WD" 2>/dev/null
	for p in $OUR_PIDS; do kill -TERM "$p" 2>/dev/null; done
	for p in $OUR_PIDS; do
		i=0
		while cs_alive "$p" && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
		kill -KILL "$p" 2>/dev/null
	done
	cs_cleanup "$CS_REG"
	tb_cleanup
}
trap ike_cleanup EXIT
trap 'exit 1' INT TERM
t_start=$(cs_ms)
(
	i=0
	while [ $i -lt "$LIMIT_S" ]; do sleep 1; i=$((i + 1)); done
	echo "not ok - time limit: the test ran over $LIMIT_S s"
	kill -TERM $$
) &
WD=$!

if [ "$(id -u)" != 0 ]; then
	nok "interop test needs root (network namespaces)"
	exit 1
fi
if ! cs_install; then
	nok "install strongSwan (strongswan-charon strongswan-swanctl libcharon-extra-plugins)"
	exit 1
fi

# --- network: charon's namespace C, our side O (or the root namespace) ----
net=$(cs_free_net) || { nok "no free 10.99.N.0/30"; exit 1; }
C=ikeC$$
O=ikeO$$
C_ADDR=$net.2		# charon
O_ADDR=$net.1		# our endpoint
cs_ns_add $C || { nok "netns $C"; exit 1; }
if [ "$OURS_NS" = root ]; then
	O=-
	RUN=""
else
	cs_ns_add $O || { nok "netns $O"; exit 1; }
	RUN="ip netns exec $O"
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
    cs_mkcert "$PKI" ike-ue ue.test "email:$UE_ID,DNS:ue.test" &&
    cs_mkcert "$PKI" ike-n3iwf $N3IWF_ID "DNS:$N3IWF_ID,IP:$O_ADDR,IP:$C_ADDR" ||
    { nok "IKE certificates from the test CA"; exit 1; }
PSK_HEX=$(openssl rand -hex 32)
printf '%s\n' "$PSK_HEX" >"$TB/psk.hex"

# b64hex: base64 on stdin -> lowercase hex.
b64hex() { base64 -d 2>/dev/null | od -An -v -tx1 | tr -d ' \n'; }
# new_qkd_key: a fresh QKD key from the testbed: enc_keys at kmsd A as sae-a
# (the initiator is the master SAE) and, for the other side, dec_keys at
# kmsd B as sae-b. Sets QKD_ID, QKD_HEX_A (what A got), QKD_HEX_B (B's).
QKD_UP=""
new_qkd_key() {
	if [ -z "$QKD_UP" ]; then
		tb_up
		QKD_UP=1
	fi
	e=$("$KMSCLIENT" --url "$KMSD_A_URL" --cert "$SAE_A_CERT" --key "$SAE_A_KEY" \
	    --ca "$CA" --json enc sae-b -s 256 2>"$TB/kmsclient.err")
	QKD_ID=$(json_get "$e" '.keys[0].key_ID')
	QKD_HEX_A=$(json_get "$e" '.keys[0].key' | b64hex)
	d=$("$KMSCLIENT" --url "$KMSD_B_URL" --cert "$SAE_B_CERT" --key "$SAE_B_KEY" \
	    --ca "$CA" --json dec sae-a "$QKD_ID" 2>>"$TB/kmsclient.err")
	QKD_HEX_B=$(json_get "$d" '.keys[0].key' | b64hex)
	[ ${#QKD_HEX_A} -eq 64 ] && [ "$QKD_HEX_A" = "$QKD_HEX_B" ]
}

# === Our endpoints' command lines (the one place to adapt) =================
# Files: --psk-file and --ppk-file hold the key as hex text (the key is the
# decoded bytes; charon gets the same bytes as secret = 0x...). --cert/--key
# PEM (ECDSA P-256), --ca the CA that signed the peer's certificate. IDs:
# ue@test (RFC 822) and n3iwf.test (FQDN), also in the certificates' SANs.
# Our endpoints propose/accept their full default set (AES-CBC-256 +
# HMAC-SHA2-256-128 and AES-GCM-16-256, PRF-HMAC-SHA2-256, DH 14/19/31);
# charon's side narrows it. ike-ue is expected to keep its SAs until SIGTERM,
# then send Delete and exit 0; ike-n3iwf to serve until SIGTERM, exit 0.
auth_args() {	# MODE SIDE(ue|n3iwf)
	case $1 in
	psk) echo "--psk-file $TB/psk.hex" ;;
	cert) echo "--cert $PKI/ike-$2.crt --key $PKI/ike-$2.key --ca $PKI/ca.crt" ;;
	qkd+dh) echo "--psk-file $TB/psk.hex $(ppk_args "$2")" ;;
	esac
}
# RFC 8784: our initiator sends PPK_IDENTITY with PPK_ID = the ETSI key_ID.
# PPK_FROM=file: both sides get the key from the test (--ppk-file, --ppk-id).
# PPK_FROM=kmsd: our responder fetches the key named in PPK_IDENTITY at
# kmsd B itself (dec_keys, master sae-a), as in production.
ppk_args() {	# SIDE
	if [ "$1" = n3iwf ] && [ "$PPK_FROM" = kmsd ]; then
		echo "--kms-url $KMSD_B_URL --kms-cert $SAE_B_CERT --kms-key $SAE_B_KEY --kms-ca $CA --peer-sae sae-a"
	else
		echo "--ppk-file $TB/ppk.hex --ppk-id $QKD_ID"
	fi
}
ue_start() {	# MODE LOGFILE: our initiator -> charon, in the background
	$RUN timeout 60 "$IKE_UE" --profile rfc7296 --mode "$1" \
	    --local "$O_ADDR" --peer "$C_ADDR:500" \
	    --id "$UE_ID" --peer-id "$N3IWF_ID" $(auth_args "$1" ue) \
	    </dev/null >"$2" 2>&1 &
	UE_PID=$!
	OUR_PIDS="$OUR_PIDS $UE_PID"
}
n3iwf_start() {	# MODE LOGFILE: our responder, in the background
	$RUN timeout 60 "$IKE_N3IWF" --profile rfc7296 --mode "$1" \
	    --listen "$O_ADDR:500" \
	    --id "$N3IWF_ID" --peer-id "$UE_ID" $(auth_args "$1" n3iwf) \
	    </dev/null >"$2" 2>&1 &
	N3IWF_PID=$!
	OUR_PIDS="$OUR_PIDS $N3IWF_PID"
}
# ===========================================================================

# charon's swanctl template variables for MODE ROLE(initiator|responder).
charon_vars() {
	case $1 in
	psk) echo "PSK=0x$PSK_HEX" ;;
	cert) s=ike-n3iwf; [ "$2" = initiator ] && s=ike-ue
		echo "CERT_FILE=$PKI/$s.crt KEY_FILE=$PKI/$s.key CA_FILE=$PKI/ca.crt" ;;
	qkd+dh) echo "PSK=0x$PSK_HEX PPK=0x$CHARON_PPK PPK_ID=$QKD_ID" ;;
	esac
}
tpl() { [ "$1" = qkd+dh ] && echo ppk-$2 || echo "$1-$2"; }

# wait_sa: until charon has the IKE SA ESTABLISHED and the Child SA
# INSTALLED (or PID died, or 15 s).
wait_sa() {	# PID
	i=0
	while [ $i -lt 300 ]; do
		[ "$(cs_ike_get "$CD" state)" = ESTABLISHED ] &&
		    [ "$(cs_child_get "$CD" state)" = INSTALLED ] && return 0
		[ -n "$1" ] && ! cs_alive "$1" && return 1
		sleep 0.05; i=$((i + 1))
	done
	return 1
}
# wait_gone: until charon has no IKE SA (3 s).
wait_gone() {
	i=0
	while [ -n "$(cs_sas "$CD")" ] && [ $i -lt 60 ]; do sleep 0.05; i=$((i + 1)); done
	[ -z "$(cs_sas "$CD")" ]
}
# stop_ours PID: SIGTERM, wait up to 5 s; STOP_RC = its exit status (or
# "killed" when SIGKILL was needed).
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
# wait_line LOG: until LOG has our success line (2 s).
wait_line() {
	i=0
	while ! grep -qE "$OK_RE" "$1" 2>/dev/null && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
}
# diag LOG...: the last lines of the logs as comments.
diag() {
	for f in "$@"; do
		echo "# --- $(basename "$f"):"
		tail -n 12 "$f" 2>/dev/null | sed 's/^/#   /'
	done
}
# mode_setup MODE: per-case keys (a fresh QKD key for qkd+dh).
mode_setup() {
	[ "$1" = qkd+dh ] || return 0
	if ! new_qkd_key; then
		nok "qkd+dh: a QKD key from kmsd A and the same from kmsd B: $(cat "$TB/kmsclient.err" 2>/dev/null | tail -n 2)"
		return 1
	fi
}

# Case 1: our initiator -> charon responder.
case_ue() {	# MODE IKE_PROPOSAL ESP_PROPOSAL
	m=$1; name="ike-ue -> charon, $1, $2, $3"
	mode_setup "$m" || return
	# the initiator is the master SAE: our UE has the enc_keys key, charon
	# the dec_keys one
	printf '%s\n' "${QKD_HEX_A:-}" >"$TB/ppk.hex"; CHARON_PPK=${QKD_HEX_B:-}
	if ! cs_load "$CD" "$(tpl "$m" responder)" LOCAL_ADDRS=$C_ADDR \
	    LOCAL_ID=$N3IWF_ID REMOTE_ID=$UE_ID IKE_PROPOSALS=$2 ESP_PROPOSALS=$3 \
	    $(charon_vars "$m" responder); then
		nok "$name: load charon config"; return
	fi
	log=$TB/ue-$m-$2.log
	t=$(cs_ms)
	ue_start "$m" "$log"
	wait_sa "$UE_PID"
	el=$(($(cs_ms) - t))
	check "$name: IKE SA on charon" "ESTABLISHED $(cs_ike_name "$2")" "$(cs_ike_summary "$CD")"
	check "$name: Child SA on charon" "INSTALLED $(cs_esp_name "$3")" "$(cs_child_summary "$CD")"
	wait_line "$log"
	check_match "$name: ike-ue reports success" "$OK_RE" "$(grep -E "$OK_RE" "$log" | head -n 1)"
	echo "# $name: charon saw the SAs after $el ms"
	stop_ours "$UE_PID"
	check "$name: ike-ue exits 0 on SIGTERM" 0 "$STOP_RC"
	if wait_gone; then ok "$name: ike-ue's Delete reached charon"; else nok "$name: ike-ue's Delete reached charon"; fi
	cs_swanctl "$CD" --terminate --ike ike --force --timeout 1 >/dev/null 2>&1
	diag_if_failed "$log"
}

# Case 2: charon initiator -> our responder.
case_n3iwf() {	# MODE IKE_PROPOSAL ESP_PROPOSAL
	m=$1; name="charon -> ike-n3iwf, $1, $2, $3"
	mode_setup "$m" || return
	# charon initiates, so it is the master SAE: the enc_keys key
	printf '%s\n' "${QKD_HEX_B:-}" >"$TB/ppk.hex"; CHARON_PPK=${QKD_HEX_A:-}
	log=$TB/n3iwf-$m-$2.log
	n3iwf_start "$m" "$log"
	i=0	# until it listens on UDP 500
	until $RUN ss -Hlun 2>/dev/null | grep -q "$O_ADDR:500 \|0\.0\.0\.0:500 \|\*:500 "; do
		if ! cs_alive "$N3IWF_PID" || [ $i -ge 100 ]; then break; fi
		sleep 0.05; i=$((i + 1))
	done
	if ! cs_alive "$N3IWF_PID"; then
		nok "$name: ike-n3iwf is running"; diag "$log"; return
	fi
	if ! cs_load "$CD" "$(tpl "$m" initiator)" LOCAL_ADDRS=$C_ADDR \
	    REMOTE_ADDRS=$O_ADDR LOCAL_ID=$UE_ID REMOTE_ID=$N3IWF_ID \
	    IKE_PROPOSALS=$2 ESP_PROPOSALS=$3 $(charon_vars "$m" initiator); then
		nok "$name: load charon config"; stop_ours "$N3IWF_PID"; return
	fi
	t=$(cs_ms)
	cs_initiate "$CD" 10
	check "$name: swanctl --initiate" 0 $?
	echo "# $name: swanctl --initiate took $(($(cs_ms) - t)) ms"
	check "$name: IKE SA on charon" "ESTABLISHED $(cs_ike_name "$2")" "$(cs_ike_summary "$CD")"
	check "$name: Child SA on charon" "INSTALLED $(cs_esp_name "$3")" "$(cs_child_summary "$CD")"
	wait_line "$log"
	check_match "$name: ike-n3iwf reports success" "$OK_RE" "$(grep -E "$OK_RE" "$log" | head -n 1)"
	cs_terminate "$CD"
	if wait_gone; then ok "$name: charon's Delete answered"; else nok "$name: charon's Delete answered"; fi
	if cs_alive "$N3IWF_PID"; then ok "$name: ike-n3iwf still up after the Delete"; else nok "$name: ike-n3iwf still up after the Delete"; fi
	stop_ours "$N3IWF_PID"
	check "$name: ike-n3iwf exits 0 on SIGTERM" 0 "$STOP_RC"
	cs_swanctl "$CD" --terminate --ike ike --force --timeout 1 >/dev/null 2>&1
	diag_if_failed "$log"
}

# Diagnostics once per case that had a failure (lib.sh's check and
# check_match call this nok).
NFAIL=0; NFAIL_SEEN=0
nok() { echo "not ok - $*"; NFAIL=$((NFAIL + 1)); }
diag_if_failed() {
	if [ $NFAIL -ne $NFAIL_SEEN ]; then
		diag "$1" "$CD/charon.log"
		NFAIL_SEEN=$NFAIL
	fi
	: >"$CD/charon.log"	# per-case charon log (charon appends)
}

for mode_ in $CASES; do
	case $mode_ in
	psk)
		case_ue psk aes256-sha256-modp2048 aes256-sha256
		case_ue psk aes256gcm16-prfsha256-ecp256 aes256gcm16
		case_ue psk aes256gcm16-prfsha256-curve25519 aes256-sha256
		case_n3iwf psk aes256-sha256-modp2048 aes256gcm16
		case_n3iwf psk aes256-sha256-ecp256 aes256-sha256
		case_n3iwf psk aes256gcm16-prfsha256-curve25519 aes256gcm16 ;;
	cert)
		case_ue cert aes256-sha256-ecp256 aes256gcm16
		case_n3iwf cert aes256gcm16-prfsha256-modp2048 aes256-sha256 ;;
	qkd+dh)
		case_ue qkd+dh aes256-sha256-curve25519 aes256gcm16
		case_n3iwf qkd+dh aes256gcm16-prfsha256-ecp256 aes256-sha256 ;;
	*) nok "unknown case $mode_" ;;
	esac
done
echo "# total $(($(cs_ms) - t_start)) ms"
