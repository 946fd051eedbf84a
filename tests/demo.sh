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
trap 'sh tests/testbed.sh down "$TB" >/dev/null 2>&1; rm -rf "$TB"' EXIT INT TERM

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
fp() { printf '%s' "$1" | base64 -d | sha256sum | cut -c1-16; }

say "[1] Starting site A (KME A, QKD transmitter) and site B (KME B, receiver)"
sh tests/testbed.sh up "$TB" >/dev/null
. "$TB/testbed.env"
echo "    KME A  $KME_A_URL   SAEs: $SAE_A_ID"
echo "    KME B  $KME_B_URL   SAEs: $SAE_B_ID, $SAE_X_ID"
echo "    emulated QKD link up; mutual TLS everywhere (test PKI in certs/out)"

A="$BINDIR/kmsclient --url $KME_A_URL --cert $SAE_A_CERT --key $SAE_A_KEY --ca $CA"
B="$BINDIR/kmsclient --url $KME_B_URL --cert $SAE_B_CERT --key $SAE_B_KEY --ca $CA"
X="$BINDIR/kmsclient --url $KME_B_URL --cert $SAE_X_CERT --key $SAE_X_KEY --ca $CA"

say "[2] $SAE_A_ID asks KME A for the status of its keys with $SAE_B_ID (GET status)"
$A status "$SAE_B_ID" | sed 's/^/    /'

say "[3] $SAE_A_ID (master) asks KME A for 3 keys of 256 bits for $SAE_B_ID (POST enc_keys)"
enc=$($A --json enc "$SAE_B_ID" -n 3 -s 256)
ids=$(printf '%s' "$enc" | jq -r '.keys[].key_ID')
printf '%s' "$enc" | jq -r '.keys[] | "\(.key_ID) \(.key)"' | while read -r id key; do
	echo "    key_ID $id  sha256 $(fp "$key")"
done

say "[4] $SAE_A_ID sends the 3 key IDs to $SAE_B_ID (in the real system: inside IKE_SA_INIT)"

say "[5] $SAE_B_ID (slave) asks KME B for the keys with these IDs (POST dec_keys)"
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

say "[9] A client certificate from an untrusted CA is refused in the TLS handshake"
$BINDIR/kmsclient --url "$KME_A_URL" --cert "$ROGUE_CERT" --key "$ROGUE_KEY" \
	--ca "$CA" status "$SAE_B_ID" 2>&1 | sed 's/^/    /' || true

say "Done. Logs of both KMEs were in $TB (removed on exit)."
