#!/bin/sh
# make demo: the two-site QKD key exchange on the embedded default testbed,
# printed as a transcript. Key bytes are shown only as SHA-256 fingerprints.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BINDIR=${BINDIR:-bin}
case $BINDIR in /*) ;; *) BINDIR=$top/$BINDIR ;; esac
export BINDIR
TB=$(mktemp -d /tmp/qkd-demo.XXXXXX)
TT=$(mktemp -d /tmp/qkd-demo-tunnel.XXXXXX)
trap 'sh tests/testbed.sh down "$TT" >/dev/null 2>&1; sh tests/testbed.sh down "$TB" >/dev/null 2>&1; rm -rf "$TB" "$TT"' EXIT INT TERM

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
fp() { printf '%s' "$1" | base64 -d | sha256sum | cut -c1-16; }

say "[1] Starting site A (KME A, QKD transmitter) and site B (KME B, receiver)"
sh tests/testbed.sh up "$TB" >/dev/null
. "$TB/testbed.env"
echo "    KME A  $KME_A_URL   SAEs: $SAE_A_ID"
echo "    KME B  $KME_B_URL   SAEs: $SAE_B_ID, $SAE_X_ID"
echo "    kmsd A $KMSD_A_URL   kmsd B $KMSD_B_URL   (the SAEs' only way to their KME)"
echo "    emulated QKD link up; mutual TLS everywhere (test PKI in certs/out)"

A="$BINDIR/kmsclient --url $KMSD_A_URL --cert $SAE_A_CERT --key $SAE_A_KEY --ca $CA"
B="$BINDIR/kmsclient --url $KMSD_B_URL --cert $SAE_B_CERT --key $SAE_B_KEY --ca $CA"
X="$BINDIR/kmsclient --url $KMSD_B_URL --cert $SAE_X_CERT --key $SAE_X_KEY --ca $CA"

say "[2] $SAE_A_ID asks kmsd A for the status of its keys with $SAE_B_ID (GET status)"
$A status "$SAE_B_ID" | sed 's/^/    /'

say "[3] $SAE_A_ID (master) asks kmsd A for 3 keys of 256 bits for $SAE_B_ID (POST enc_keys)"
enc=$($A --json enc "$SAE_B_ID" -n 3 -s 256)
ids=$(printf '%s' "$enc" | jq -r '.keys[].key_ID')
printf '%s' "$enc" | jq -r '.keys[] | "\(.key_ID) \(.key)"' | while read -r id key; do
	echo "    key_ID $id  sha256 $(fp "$key")"
done

say "[4] $SAE_A_ID sends the 3 key IDs to $SAE_B_ID (in the real system: inside IKE_SA_INIT)"

say "[5] $SAE_B_ID (slave) asks kmsd B for the keys with these IDs (POST dec_keys)"
# shellcheck disable=SC2086
dec=$($B --json dec "$SAE_A_ID" $ids)
printf '%s' "$dec" | jq -r '.keys[] | "\(.key_ID) \(.key)"' | while read -r id key; do
	echo "    key_ID $id  sha256 $(fp "$key")"
done

say "[6] Both sites hold the same keys?"
a=$(printf '%s' "$enc" | jq -r '.keys[] | "\(.key_ID) \(.key)"' | sort)
b=$(printf '%s' "$dec" | jq -r '.keys[] | "\(.key_ID) \(.key)"' | sort)
if [ "$a" = "$b" ]; then
	echo "    yes: 3 of 3 keys identical at site A and site B"
else
	echo "    NO: the keys differ"; exit 1
fi

say "[7] $SAE_B_ID asks for the same keys again: a key is delivered only once"
# shellcheck disable=SC2086
$B dec "$SAE_A_ID" $ids 2>&1 | sed 's/^/    /' || true

say "[8] $SAE_X_ID, another SAE at site B, tries to take keys meant for $SAE_B_ID"
enc2=$($A --json enc "$SAE_B_ID" -n 1)
id2=$(printf '%s' "$enc2" | jq -r '.keys[0].key_ID')
$X dec "$SAE_A_ID" "$id2" 2>&1 | sed 's/^/    /' || true
echo "    ... and $SAE_B_ID still gets it:"
$B dec "$SAE_A_ID" "$id2" | awk '{print "    key_ID " $1 "  (delivered)"}'

say "[9] $SAE_A_ID skips kmsd and calls KME A with its own certificate: refused"
$BINDIR/kmsclient --url "$KME_A_URL" --cert "$SAE_A_CERT" --key "$SAE_A_KEY" \
	--ca "$CA" status "$SAE_B_ID" 2>&1 | sed 's/^/    /' || true
echo "    (KME A knows $SAE_A_ID only by kmsd A's certificate kmsd-a.$SAE_A_ID)"
echo "    and a client certificate from an untrusted CA is refused in the TLS handshake:"
$BINDIR/kmsclient --url "$KME_A_URL" --cert "$ROGUE_CERT" --key "$ROGUE_KEY" \
	--ca "$CA" status "$SAE_B_ID" 2>&1 | sed 's/^/    /' || true

say "[10] The same keys for IPsec: a UE connects to the N3IWF over NWu (IKEv2 + EAP-5G)"
echo "    site A: ike-n3iwf with kmsd A; site B: ike-ue with kmsd B; 20 connections per mode"
ike() {	# MODE: run 20 connections, print the UE's summary line
	mode=$1
	rm -f "$TB/n3.ready"
	"$BINDIR/ike-n3iwf" --mode "$mode" --listen 127.0.0.1:0 --natt-port 0 \
		--ready-file "$TB/n3.ready" --max-conns 20 \
		--cert "$SAE_A_CERT" --key "$SAE_A_KEY" --ca "$CA" \
		--kmsd-url "$KMSD_A_URL" --kmsd-cert "$SAE_A_CERT" --kmsd-key "$SAE_A_KEY" \
		--peer-sae "$SAE_B_ID" --qkd-budget-src off --qkd-budget-sae off \
		>"$TB/n3-$mode.log" 2>&1 &	# 20 in a row from one UE: over the default budgets
	i=0
	while [ ! -s "$TB/n3.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	port=$(sed -n 's/^port=//p' "$TB/n3.ready")
	timeout 60 "$BINDIR/ike-ue" --mode "$mode" --peer "127.0.0.1:$port" --ca "$CA" \
		--cert "$SAE_B_CERT" --key "$SAE_B_KEY" \
		--kmsd-url "$KMSD_B_URL" --kmsd-cert "$SAE_B_CERT" --kmsd-key "$SAE_B_KEY" \
		--peer-sae "$SAE_A_ID" --count 20 --csv "$TB/ue-$mode.csv" >"$TB/ue-$mode.log" 2>&1 ||
		{ echo "    $mode: FAILED"; tail -n 3 "$TB/ue-$mode.log"; return 1; }
	wait
	# Medians of the INIT and total columns of the UE's CSV.
	col() { awk -F, -v n="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == n) c = i; next }
	    { print $c }' "$TB/ue-$mode.csv" | sort -g | awk '{ v[NR] = $1 }
	    END { printf "%.2f", v[int((NR + 1) / 2)] }'; }
	echo "    $mode: $(grep -c . "$TB/ue-$mode.csv" | awk '{ print $1 - 1 }') connections," \
	    "median IKE_SA_INIT $(col init_ms) ms, whole NWu connection $(col total_ms) ms"
}
ike psk
ike qkd
grep -m 1 "IKE SA established" "$TB/ue-qkd.log" | sed 's/^.*ike-ue info: /    e.g.: /'
echo "    qkd: no Diffie-Hellman; 13 keys from ONE enc_keys at kmsd A (from its pool),"
echo "    their IDs to the UE in IKE_SA_INIT, ONE dec_keys at kmsd B (see ike/README.md)"

say "[11] Traffic through the QKD tunnel: UE, N3IWF and a data network in network namespaces"
[ "$(id -u)" = 0 ] || { echo "    needs root (network namespaces, TUN devices)"; exit 1; }
echo "    tests/testbed.sh up DIR --tunnel --mode qkd: ike-n3iwf and ike-ue with --tunnel yes,"
echo "    ESP (AES-CBC-256 + HMAC-SHA2-256) in UDP 4500 through Child SAs keyed by QKD,"
echo "    NAS over TCP inside the signalling SA, the user plane in GRE (QFI) in the other"
sh tests/testbed.sh up "$TT" --tunnel --mode qkd >"$TT/up.log" 2>&1 ||
	{ echo "    FAILED:"; tail -n 3 "$TT/up.log"; exit 1; }
. "$TT/testbed.env"
grep -o 'tunnel up: .*' "$UE_LOG" | sed 's/^/    UE: /'
echo "    ping $DN_ADDR (the data network) from the UE's namespace:"
ip netns exec "$UE_NETNS" ping -c 5 -i 0.2 "$DN_ADDR" | sed 's/^/    /'
sleep 1.2	# the status files are rewritten every second
echo "    the UE's Child SAs (status file: SPIs, packets, replay/ICV drops; no keys):"
grep '^child' "$UE_STATUS" | sed 's/^/    /'
sh tests/testbed.sh down "$TT" >/dev/null 2>&1

say "Done. Logs were in $TB (removed on exit). More: make test, bench/ike/run.sh."
