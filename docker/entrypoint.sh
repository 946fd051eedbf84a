#!/bin/sh
# qkd-entry ROLE [ARGS...]: the image's entrypoint, one role per service of
# docker/compose.yaml. Every role but pki waits for the test PKI (the pki
# volume, made by the one-shot pki service), then execs its daemon in the
# foreground with the config from /etc/qkd-ipsec and ARGS appended (flags
# override the file). The configs take IPv4 addresses where the daemons
# need them (KME B's link peer, the IKE endpoints): they are looked up here
# by service name in the engine's DNS, which answers with the address on
# the network the two share.
#
#   pki         certs/mkcerts.sh into $PKI, then $PKI/.done; exits 0
#   kme-a kme-b qkd-sim (KME B: --link-peer kme-a's address)
#   kmsd-a kmsd-b
#               kmsd (kmsd-hw: $KMSD_CONF, --upstream $KME_URL)
#   ike-n3iwf   listens on its address in $NWU_NET (the NWu network)
#   ike-ue      connects to ike-n3iwf's address on NWu, --tunnel yes
#   dn          the data network: routes $UE_INNER_PREFIX via ike-n3iwf
#   ROLE is anything else: exec'd as a command (e.g. sh)
#
# Environment: PKI (/pki), IKE_MODE (qkd), IKE_ARGS (more flags for both
# IKE endpoints), NWU_NET (172.30.4, the NWu network's /24 prefix),
# UE_INNER_PREFIX (10.60.0.0/16), UE_INNER_ADDR (10.60.0.2).
set -eu
PKI=${PKI:-/pki}
ETC=/etc/qkd-ipsec
role=${1:-}
[ $# -eq 0 ] || shift

die() { echo "qkd-entry $role: $*" >&2; exit 1; }

wait_pki() {
	i=0
	until [ -f "$PKI/.done" ]; do
		i=$((i + 1))
		[ $i -le 600 ] || die "no PKI in $PKI after 60 s (is the pki service done?)"
		sleep 0.1
	done
}

# resolve NAME: its IPv4 address, waiting up to 60 s for it to appear.
resolve() {
	i=0
	while :; do
		a=$(getent ahostsv4 "$1" | awk 'NR == 1 { print $1 }')
		[ -n "$a" ] && { echo "$a"; return 0; }
		i=$((i + 1))
		[ $i -le 600 ] || die "cannot resolve $1"
		sleep 0.1
	done
}

# own_addr PREFIX: this container's IPv4 address in PREFIX.0/24.
own_addr() {
	a=$(ip -4 -o addr show | awk -v p="$1." '{ sub("/.*", "", $4) }
	    index($4, p) == 1 { print $4; exit }')
	[ -n "$a" ] || die "no address in $1.0/24 (is the container on that network?)"
	echo "$a"
}

# The IKE endpoints start as root (compose.yaml) only to open
# /dev/net/tun, which is 0600 root on many hosts; this script then runs
# again as qkd with nothing but NET_ADMIN (TUN, routes) and
# NET_BIND_SERVICE (port 500), which the daemon inherits (ambient).
case $role in
ike-n3iwf|ike-ue)
	if [ "$(id -u)" -eq 0 ]; then
		chmod 0666 /dev/net/tun
		exec setpriv --reuid qkd --regid qkd --init-groups \
		    --inh-caps -all,+net_admin,+net_bind_service \
		    --ambient-caps -all,+net_admin,+net_bind_service \
		    --bounding-set -all,+net_admin,+net_bind_service -- "$0" "$role" "$@"
	fi ;;
esac

IKE_COMMON="--mode ${IKE_MODE:-qkd} --profile nwu --psk test-psk-1 \
--ca $PKI/ca.crt --kmsd-ca $PKI/ca.crt --tunnel yes --log-level info"
NWU_NET=${NWU_NET:-172.30.4}
UE_INNER_PREFIX=${UE_INNER_PREFIX:-10.60.0.0/16}
UE_INNER_ADDR=${UE_INNER_ADDR:-10.60.0.2}

case $role in
pki)
	sh /usr/share/qkd-ipsec/mkcerts.sh "$PKI"
	touch "$PKI/.done"
	echo "qkd-entry pki: test PKI ready in $PKI"
	exit 0 ;;
kme-a)
	wait_pki
	exec qkd-sim --config "$ETC/kme-a.conf" "$@" ;;
kme-b)
	wait_pki
	exec qkd-sim --config "$ETC/kme-b.conf" \
	    --link-peer "$(resolve kme-a):9443" "$@" ;;
kmsd-a|kmsd-b)
	wait_pki
	exec kmsd --config "$ETC/$role.conf" "$@" ;;
kmsd-hw)
	[ -f "${KMSD_CONF:-}" ] || die "no kmsd config at \"${KMSD_CONF:-}\" (mount it, see docker/README.md)"
	[ -n "${KME_URL:-}" ] || die "KME_URL is not set (the KME's https://HOST:PORT)"
	exec kmsd --config "$KMSD_CONF" --upstream "$KME_URL" "$@" ;;
ike-n3iwf)
	wait_pki
	# shellcheck disable=SC2086 # IKE_COMMON, IKE_ARGS: several flags
	exec ike-n3iwf $IKE_COMMON --listen "$(own_addr "$NWU_NET"):500" \
	    --natt-port 4500 --inner-ip "$UE_INNER_ADDR" \
	    --cert "$PKI/sae-a.crt" --key "$PKI/sae-a.key" --peer-sae sae-b \
	    --kmsd-url https://kmsd-a:7443 --kmsd-cert "$PKI/sae-a.crt" \
	    --kmsd-key "$PKI/sae-a.key" --tun-route "$UE_INNER_PREFIX" \
	    --status-file /run/qkd/n3iwf.status \
	    --ready-file /run/qkd/n3iwf.ready ${IKE_ARGS:-} "$@" ;;
ike-ue)
	wait_pki
	# shellcheck disable=SC2086
	exec ike-ue $IKE_COMMON --peer "$(resolve ike-n3iwf):500" \
	    --local "$(own_addr "$NWU_NET")" \
	    --cert "$PKI/sae-b.crt" --key "$PKI/sae-b.key" --peer-sae sae-a \
	    --kmsd-url https://kmsd-b:7443 --kmsd-cert "$PKI/sae-b.crt" \
	    --kmsd-key "$PKI/sae-b.key" --hold 0 \
	    --status-file /run/qkd/ue.status ${IKE_ARGS:-} "$@" ;;
dn)
	ip route replace "$UE_INNER_PREFIX" via "$(resolve ike-n3iwf)"
	echo "qkd-entry dn: $UE_INNER_PREFIX via ike-n3iwf"
	exec sleep infinity ;;
"")
	die "usage: qkd-entry ROLE [ARGS...] (see /usr/bin/qkd-entry)" ;;
*)
	exec "$role" "$@" ;;
esac
