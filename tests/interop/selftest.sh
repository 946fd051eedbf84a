#!/bin/sh
# Self-test of the strongSwan harness: charon <-> charon between two network
# namespaces joined by one veth pair (nothing in the root namespace), in
# every auth variant of tests/interop/swanctl/ (psk, cert, ppk) and every
# DH group / cipher our endpoints implement; each case checks the IKE SA is
# ESTABLISHED and the Child SA INSTALLED with the proposed algorithms on both
# sides, and pings through the tunnel (inner addresses on lo, reachable only
# through the Child SA), checking ESP packet counters.
#   sh tests/interop/selftest.sh [psk|cert|ppk]...     (root; default: all)
# Prints TAP-ish "ok - ..." / "not ok - ..." lines and timings ("# ...").
# KEEP=1 keeps the temp dir (charon logs, rendered configs).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
CS_HOME=$here
. "$here/charon.sh"

modes=${*:-psk cert ppk}
pass=0; fail=0
ok()  { echo "ok - $*"; pass=$((pass + 1)); }
nok() { echo "not ok - $*"; fail=$((fail + 1)); }
check() { if [ "$2" = "$3" ]; then ok "$1"; else nok "$1: expected [$2], got [$3]"; fi; }

[ "$(id -u)" = 0 ] || { echo "not ok - selftest needs root"; exit 1; }
cs_install || { echo "not ok - strongSwan install"; exit 1; }

T=$(mktemp -d /tmp/cs-self.XXXXXX)
CS_REG=$T/reg
finish() {
	cs_cleanup "$CS_REG"
	if [ -n "${KEEP:-}" ]; then echo "# kept $T"; else rm -rf "$T"; fi
}
trap finish EXIT
trap 'exit 1' INT TERM

net=$(cs_free_net) || { echo "not ok - no free 10.99.N subnet"; exit 1; }
A=csA$$; B=csB$$		# A: "UE" side (initiator), B: "N3IWF" (responder)
ADDR_A=$net.2; ADDR_B=$net.1	# the veth ends (IKE)
IN_A=$net.66; IN_B=$net.65	# tunnel end points on lo (Child SA TS)
cs_ns_add $A && cs_ns_add $B &&
    cs_link $A va$$ $ADDR_A/30 $B vb$$ $ADDR_B/30 &&
    cs_addr $A $IN_A/32 && cs_addr $B $IN_B/32 ||
    { echo "not ok - namespaces"; exit 1; }
# Before any SA, the inner address is unreachable (no route but the /30).
if ip netns exec $A ping -c 1 -W 1 $IN_B >/dev/null 2>&1; then
	nok "no path to $IN_B outside the tunnel"
else
	ok "no path to $IN_B outside the tunnel"
fi

t0=$(cs_ms)
cs_start "$T/a" $A && cs_start "$T/b" $B || { echo "not ok - charon start"; exit 1; }
echo "# charon start: A $(cat "$T/a/start_ms") ms, B $(cat "$T/b/start_ms") ms (both: $(($(cs_ms) - t0)) ms)"

# PKI: our test CA (certs/mkcerts.sh) + IKE certificates with the IDs.
sh "$top/certs/mkcerts.sh" "$T/pki" >/dev/null 2>&1 &&
    cs_mkcert "$T/pki" ike-ue ue.test "email:ue@test,DNS:ue.test" &&
    cs_mkcert "$T/pki" ike-n3iwf n3iwf.test "DNS:n3iwf.test,IP:$ADDR_A,IP:$ADDR_B" ||
    { echo "not ok - PKI"; exit 1; }
PSK=0x$(openssl rand -hex 32)
PPK=0x$(openssl rand -hex 32)
PPK_ID=$(cat /proc/sys/kernel/random/uuid)	# like an ETSI key_ID

# one MODE IKE_PROPOSAL ESP_PROPOSAL
one() {
	m=$1; ike=$2; esp=$3
	name="$m $ike $esp"
	# H2H=1: host-to-host, TS = the IKE addresses (what a plain RFC 7296
	# peer proposes; needs allow_peer_ts and the fwmark bypass)
	if [ -n "${H2H:-}" ]; then
		name="$name host-to-host"; common=""; rcommon=""; src=$ADDR_A; dst=$ADDR_B
	else
		common="LOCAL_TS=$IN_A/32 REMOTE_TS=$IN_B/32"
		rcommon="LOCAL_TS=$IN_B/32 REMOTE_TS=$IN_A/32"; src=$IN_A; dst=$IN_B
	fi
	case $m in
	psk)	ia="PSK=$PSK"; ib="PSK=$PSK" ;;
	cert)	ia="CERT_FILE=$T/pki/ike-ue.crt KEY_FILE=$T/pki/ike-ue.key CA_FILE=$T/pki/ca.crt"
		ib="CERT_FILE=$T/pki/ike-n3iwf.crt KEY_FILE=$T/pki/ike-n3iwf.key CA_FILE=$T/pki/ca.crt" ;;
	ppk)	ia="PSK=$PSK PPK=$PPK PPK_ID=$PPK_ID"; ib=$ia ;;
	esac
	# B: responder offers everything; A: initiator proposes exactly one.
	if ! cs_load "$T/b" $m-responder LOCAL_ADDRS=$ADDR_B LOCAL_ID=n3iwf.test \
	    REMOTE_ID=ue@test $rcommon $ib; then
		nok "$name: load responder"; return
	fi
	if ! cs_load "$T/a" $m-initiator LOCAL_ADDRS=$ADDR_A REMOTE_ADDRS=$ADDR_B \
	    LOCAL_ID=ue@test REMOTE_ID=n3iwf.test IKE_PROPOSALS=$ike \
	    ESP_PROPOSALS=$esp $common $ia; then
		nok "$name: load initiator"; return
	fi
	t=$(cs_ms)
	cs_initiate "$T/a" 10; rc=$?
	el=$(($(cs_ms) - t))
	check "$name: initiate" 0 $rc
	[ $rc -eq 0 ] || tail -n 8 "$T/a/initiate.log" | sed 's/^/#   /'
	want="ESTABLISHED $(cs_ike_name "$ike")"
	check "$name: IKE SA on initiator" "$want" "$(cs_ike_summary "$T/a")"
	check "$name: IKE SA on responder" "$want" "$(cs_ike_summary "$T/b")"
	check "$name: Child SA on initiator" "INSTALLED $(cs_esp_name "$esp")" "$(cs_child_summary "$T/a")"
	check "$name: Child SA on responder" "INSTALLED $(cs_esp_name "$esp")" "$(cs_child_summary "$T/b")"
	if [ $m = ppk ]; then
		# charon logs the PPK use at ike level 2 ("... PPK ...")
		n=$(grep -c -i 'ppk' "$T/b/charon.log")
		if grep -q "received PPK_ID\|no PPK\|PPK required but" "$T/b/charon.log"; then
			nok "$name: PPK problem in responder log: $(grep -i ppk "$T/b/charon.log" | tail -n 2)"
		else
			ok "$name: no PPK complaint in the responder log ($n PPK lines)"
		fi
	fi
	if ip netns exec $A ping -c 3 -i 0.2 -W 2 -I $src $dst >"$T/ping.log" 2>&1; then
		ok "$name: ping $src -> $dst through the tunnel"
	else
		nok "$name: ping $src -> $dst: $(tail -n 2 "$T/ping.log" | tr '\n' ' ')"
	fi
	check "$name: ESP packets out of A" 3 "$(cs_child_get "$T/a" packets-out)"
	check "$name: ESP packets into B" 3 "$(cs_child_get "$T/b" packets-in)"
	echo "# $name: IKE_SA_INIT+IKE_AUTH+Child SA in $el ms (swanctl --initiate)"
	cs_terminate "$T/a"
	i=0
	while [ -n "$(cs_sas "$T/b")" ] && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
	check "$name: Delete reaches the responder" "" "$(cs_sas "$T/b")"
}

for m in $modes; do
	case $m in
	psk)
		one psk aes256-sha256-modp2048 aes256-sha256
		one psk aes256-sha256-ecp256 aes256gcm16
		one psk aes256gcm16-prfsha256-curve25519 aes256gcm16
		one psk aes256gcm16-prfsha256-modp2048 aes256-sha256
		H2H=1 one psk aes256-sha256-curve25519 aes256gcm16 ;;
	cert)
		one cert aes256-sha256-ecp256 aes256gcm16
		one cert aes256gcm16-prfsha256-modp2048 aes256-sha256
		H2H=1 one cert aes256-sha256-modp2048 aes256-sha256 ;;
	ppk)
		one ppk aes256-sha256-modp2048 aes256-sha256
		one ppk aes256gcm16-prfsha256-curve25519 aes256gcm16
		H2H=1 one ppk aes256gcm16-prfsha256-ecp256 aes256gcm16 ;;
	*) nok "unknown mode $m" ;;
	esac
done

# Negative: a wrong PPK must fail (the PPK is really used).
if echo " $modes " | grep -q ' ppk '; then
	cs_load "$T/b" ppk-responder LOCAL_ADDRS=$ADDR_B LOCAL_ID=n3iwf.test \
	    REMOTE_ID=ue@test PSK=$PSK PPK=0x$(openssl rand -hex 32) PPK_ID=$PPK_ID \
	    LOCAL_TS=$IN_B/32 REMOTE_TS=$IN_A/32 &&
	cs_load "$T/a" ppk-initiator LOCAL_ADDRS=$ADDR_A REMOTE_ADDRS=$ADDR_B \
	    LOCAL_ID=ue@test REMOTE_ID=n3iwf.test PSK=$PSK PPK=$PPK PPK_ID=$PPK_ID \
	    LOCAL_TS=$IN_A/32 REMOTE_TS=$IN_B/32
	t=$(cs_ms)
	if cs_initiate "$T/a" 10; then
		nok "ppk: different PPKs must not establish"
	else
		ok "ppk: different PPKs do not establish ($(($(cs_ms) - t)) ms)"
	fi
	check "ppk: no IKE SA left on the responder" "" "$(cs_ike_get "$T/b" state | grep ESTABLISHED)"
fi

t0=$(cs_ms)
cs_stop "$T/a"; cs_stop "$T/b"
echo "# charon stop (both): $(($(cs_ms) - t0)) ms"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
