#!/bin/sh
# Stand-in for bin/ike-ue / bin/ike-n3iwf (by the name it is called with),
# made of a charon, to check tests/integ/test_ike_strongswan.sh itself; it
# proves nothing about our endpoints:
#   IKE_UE=tests/interop/mock/ike-ue IKE_N3IWF=tests/interop/mock/ike-n3iwf \
#       sh tests/integ/test_ike_strongswan.sh
# Takes the options that test passes (a subset of the real ones, plus
# ike-ue's --ppk-key-id) and behaves like the real binaries: ike-ue makes
# one IKE SA + Child SA, prints "IKE SA established (...)", deletes it and
# exits 0; ike-n3iwf writes --ready-file, prints that line per IKE SA, and
# exits 0 on SIGTERM. qkd+dh: the PPK comes from kmsd by dec_keys (ike-ue:
# --ppk-key-id; ike-n3iwf: $IKE_TEST_PPK_ID, as it cannot see the PPK_ID
# charon receives).
here=$(cd "$(dirname "$0")/.." && pwd)
CS_HOME=$here
. "$here/charon.sh"
role=initiator
case $(basename "$0") in *n3iwf*) role=responder ;; esac
mode=""; laddr=""; raddr=""; id=""; dh=14; cipher=aes-cbc; ready=""
psk=""; cert=""; key=""; ca=""; kurl=""; kcert=""; kkey=""; kca=""; psae=""
ppkid=${IKE_TEST_PPK_ID:-}
while [ $# -gt 0 ]; do
	case $1 in
	--help) echo "mock: --ppk-key-id"; exit 0 ;;
	--profile) [ "$2" = rfc7296 ] || { echo "mock: only rfc7296" >&2; exit 2; } ;;
	--mode) mode=$2 ;;
	--local) laddr=$2 ;;
	--peer) raddr=${2%:*} ;;
	--listen) laddr=${2%:*} ;;
	--id) id=$2 ;;
	--dh) dh=$2 ;;
	--cipher) cipher=$2 ;;
	--psk) psk=$2 ;;
	--cert) cert=$2 ;;
	--key) key=$2 ;;
	--ca) ca=$2 ;;
	--kmsd-url) kurl=$2 ;;
	--kmsd-cert) kcert=$2 ;;
	--kmsd-key) kkey=$2 ;;
	--kmsd-ca) kca=$2 ;;
	--peer-sae) psae=$2 ;;
	--ppk-key-id) ppkid=$2 ;;
	--ready-file) ready=$2 ;;
	--ppk-required|--retransmit-tries|--log-level|--natt-port|--count) ;;
	*) echo "mock: unknown option $1" >&2; exit 2 ;;
	esac
	shift 2
done
case $dh in 14) g=modp2048 ;; 19) g=ecp256 ;; 31) g=curve25519 ;; esac
case $cipher in aes-gcm) ike=aes256gcm16-prfsha256-$g; esp=aes256gcm16 ;;
*) ike=aes256-sha256-$g; esp=aes256-sha256 ;; esac
D=$(mktemp -d /tmp/mock-ike.XXXXXX)
bye() {
	[ $role = responder ] && cs_terminate "$D" 2
	cs_stop "$D"
	[ -n "${MOCK_KEEP:-}" ] || rm -rf "$D"
	exit "${1:-0}"
}
trap bye TERM INT
set -- LOCAL_ADDRS="$laddr" IKE_PROPOSALS=$ike ESP_PROPOSALS=$esp REMOTE_ID=%any
case $mode in
psk) t=psk; set -- "$@" LOCAL_ID="$id" PSK="$psk" ;;
cert) t=cert
	set -- "$@" LOCAL_ID="\"$(openssl x509 -noout -subject \
	    -nameopt sep_comma_plus_space,esc_2253 -in "$cert" | sed 's/^subject=//')\"" \
	    CERT_FILE="$cert" KEY_FILE="$key" CA_FILE="$ca" ;;
qkd+dh) t=ppk
	k=$(kmsclient_=$(dirname "$0")/../../../bin/kmsclient; "$kmsclient_" --url "$kurl" \
	    --cert "$kcert" --key "$kkey" --ca "$kca" --json dec "$psae" "$ppkid" |
	    jq -r '.keys[0].key' | base64 -d | od -An -v -tx1 | tr -d ' \n')
	[ ${#k} -eq 64 ] || { echo "mock: no PPK $ppkid from $kurl" >&2; rm -rf "$D"; exit 1; }
	set -- "$@" LOCAL_ID="$id" PSK="$psk" PPK=0x$k PPK_ID="$ppkid" ;;
*) echo "mock: mode?" >&2; exit 2 ;;
esac
[ $role = initiator ] && set -- "$@" REMOTE_ADDRS="$raddr"
cs_start "$D" - || { echo "mock: charon did not start" >&2; rm -rf "$D"; exit 1; }
cs_load "$D" $t-$role "$@" || { cat "$D/load.log" >&2; bye 1; }
ppk=""; [ $t = ppk ] && ppk=", PPK used"
if [ $role = initiator ]; then
	cs_initiate "$D" 10 || { cat "$D/initiate.log" >&2; bye 1; }
	echo "IKE SA established ($mode, rfc7296) $(cs_ike_summary "$D")$ppk"
	cs_terminate "$D" 5
	bye 0
fi
[ -n "$ready" ] && echo "port=500 pid=$$" >"$ready"
said=""
while :; do
	s=$(cs_ike_get "$D" state)
	if [ "$s" = ESTABLISHED ] && [ -z "$said" ]; then
		echo "IKE SA established ($mode, rfc7296) $(cs_ike_summary "$D")$ppk"; said=1
	elif [ -z "$s" ]; then said=""
	fi
	sleep 0.05
done
