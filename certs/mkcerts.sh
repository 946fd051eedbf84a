#!/bin/sh
# Makes the test PKI in OUTDIR (ECDSA P-256, openssl CLI):
#   ca.crt/.key                 the test CA
#   kme-a, kme-b                KME server certs (also used for the QKD link)
#   kmsd-a, kmsd-b              kmsd server+client certs
#   sae-a, sae-b, sae-x         SAE client certs, subject CN = SAE ID
#                               (sae-a at site A, sae-b and sae-x at site B)
#   rogue-ca.crt, rogue.crt     a client cert from a second, untrusted CA
# Idempotent: existing files are kept. Private keys are 0600.
set -eu
out=${1:?usage: mkcerts.sh OUTDIR}
days=3650
mkdir -p "$out"
umask 077
cd "$out"

newkey() {	# name
	[ -f "$1.key" ] || openssl genpkey -algorithm EC \
		-pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
	chmod 600 "$1.key"
}

mkca() {	# name cn
	newkey "$1"
	[ -f "$1.crt" ] || openssl req -x509 -new -key "$1.key" -sha256 \
		-days $days -subj "/O=qkd-ipsec test/CN=$2" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-out "$1.crt" 2>/dev/null
	chmod 644 "$1.crt"
}

mkcert() {	# name cn ca usage(server|client|both)
	newkey "$1"
	[ -f "$1.crt" ] && return 0
	case $4 in
	server)	eku=serverAuth ;;
	client)	eku=clientAuth ;;
	both)	eku=serverAuth,clientAuth ;;
	esac
	{
		echo "basicConstraints=critical,CA:FALSE"
		echo "keyUsage=critical,digitalSignature"
		echo "extendedKeyUsage=$eku"
		[ "$4" = client ] || echo "subjectAltName=IP:127.0.0.1,DNS:localhost"
	} > "$1.ext"
	openssl req -new -key "$1.key" -subj "/O=qkd-ipsec test/CN=$2" \
		-out "$1.csr" 2>/dev/null
	openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" \
		-CAcreateserial -days $days -sha256 -extfile "$1.ext" \
		-out "$1.crt" 2>/dev/null
	rm -f "$1.csr" "$1.ext"
	chmod 644 "$1.crt"
}

mkca ca "qkd-ipsec test CA"
mkca rogue-ca "rogue CA"
mkcert kme-a kme-a ca both
mkcert kme-b kme-b ca both
mkcert kmsd-a kmsd-a ca both
mkcert kmsd-b kmsd-b ca both
mkcert sae-a sae-a ca client
mkcert sae-b sae-b ca client
mkcert sae-x sae-x ca client
mkcert rogue sae-a rogue-ca client
rm -f ca.srl rogue-ca.srl
