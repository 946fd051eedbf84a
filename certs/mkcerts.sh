#!/bin/sh
# Makes the test PKI in OUTDIR (ECDSA P-256, openssl CLI):
#   ca.crt/.key                 the test CA
#   kme-a, kme-b                KME server certs (also used for the QKD link)
#   kmsd-a, kmsd-b              kmsd server+client certs
#   sae-a, sae-b, sae-x         SAE client certs, subject CN = SAE ID
#                               (sae-a at site A, sae-b and sae-x at site B)
#   rogue-ca.crt, rogue.crt     a client cert from a second, untrusted CA
#   kmsd-a.sae-a, kmsd-b.sae-b, kmsd-b.sae-x
#                               kmsd's own client certs at its KME, one per
#                               local SAE (the KME maps CN -> SAE ID); the
#                               SAE's own cert is for kmsd only
#   prometheus                  a client cert for /metrics on kmsd's API port
#   bad-twocn                   client cert with two CNs (sae-a and sae-b)
#   bad-client-srvonly          "client" cert sae-a with only serverAuth EKU
#   bad-server-clionly          "server" cert kme-a with only clientAuth EKU
#   bad-kme-b-srvonly           link cert kme-b with only serverAuth EKU (as
#                               the link's connecting side: a TLS client)
#   bad-name                    client cert whose CN has a quote, a non-ASCII
#                               and a control character (log escaping)
# Server certificates name 127.0.0.1, localhost and their CN (the host
# name of that service in docker/compose.yaml).
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

mkcert() {	# name cn ca usage(server|client|both|client-san)
	newkey "$1"
	[ -f "$1.crt" ] && return 0
	case $4 in
	server)	eku=serverAuth ;;
	client|client-san) eku=clientAuth ;;
	both)	eku=serverAuth,clientAuth ;;
	esac
	{
		echo "basicConstraints=critical,CA:FALSE"
		echo "keyUsage=critical,digitalSignature"
		echo "extendedKeyUsage=$eku"
		[ "$4" = client ] || echo "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:$2"
	} > "$1.ext"
	openssl req -new -utf8 -key "$1.key" -subj "/O=qkd-ipsec test/CN=$2" \
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
mkcert kmsd-a.sae-a kmsd-a.sae-a ca client
mkcert kmsd-b.sae-b kmsd-b.sae-b ca client
mkcert kmsd-b.sae-x kmsd-b.sae-x ca client
mkcert prometheus prometheus ca client
mkcert bad-twocn "sae-a/CN=sae-b" ca client
mkcert bad-client-srvonly sae-a ca server
mkcert bad-server-clionly kme-a ca client-san
mkcert bad-kme-b-srvonly kme-b ca server
mkcert bad-name "$(printf 'sae-"a\303\251\001b')" ca client
rm -f ca.srl rogue-ca.srl
