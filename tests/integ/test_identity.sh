#!/bin/sh
# Identities (issue 8, part 7), on the full testbed:
# - the KMEs know the SAEs only by kmsd's own client certificates: an SAE
#   that skips kmsd and calls its KME with its own certificate gets 401 and
#   draws no key, while the same request through kmsd works;
# - client certificates with two CNs, with an extendedKeyUsage without
#   clientAuth, or with a CN that is not a valid ID are refused in the TLS
#   handshake at kmsd and at the KME, each with a log line naming the reason
#   (the CN escaped); a server certificate without serverAuth is refused by
#   the clients (curl, kmsclient) and by the QKD link; a link certificate
#   without clientAuth is refused by the listening KME;
# - /metrics and /healthz on kmsd's API port only for metrics_sae;
# - kmsd warns when its upstream certificate is one an SAE could hold too.
. "$(dirname "$0")/lib.sh"
POOL_LOW=50; POOL_HIGH=100; export POOL_LOW POOL_HIGH	# small, quickly full
tb_up
P=$(dirname "$CA")
# stored KEY_ID count at KME A for sae-a -> sae-b, as kmsd A sees it there
kme_count() {
	json_get "$(http_body "$(sae_curl KA "$KME_A_URL/api/v1/keys/sae-b/status")")" .stored_key_count
}
# log_has FILE REGEX: the line appears within 2 s
log_has() {
	i=0
	while ! grep -qE -- "$2" "$1" && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
	grep -E -- "$2" "$1" | tail -n 1
}

# --- 1. SAEs reach their KME only through kmsd ---
r=$(sae_curl A "$KME_A_URL/api/v1/keys/sae-b/status")
check "sae-a's own certificate at KME A (status): 401" 401 "$(http_code "$r")"
check "... message names the unregistered CN" \
	'certificate CN "sae-a" is not registered at KME kme-a' "$(json_get "$(http_body "$r")" .message)"
check_match "KME A logs the refusal" 'certificate CN "sae-a" is not registered' \
	"$(log_has "$TB/kme-a.log" 'CN "sae-a" is not registered')"
# Once kmsd A's pool is full and still (no refill drawing keys), a refused
# enc_keys of 100 keys must not lower the KME's count by 100.
i=0
until a=$(poolkeys) && sleep 0.3 && [ "${a:-0}" -ge "$POOL_LOW" ] 2>/dev/null &&
    [ "$a" = "$(poolkeys)" ] || [ $i -ge 60 ]; do i=$((i + 1)); done
check "kmsd A's pool is full and still" true "$([ $i -lt 60 ] && echo true || echo false)"
c0=$(kme_count)
r=$(enc A "$KME_A_URL" sae-b '{"number":100}')
c1=$(kme_count)
check "sae-a's own certificate, enc_keys 100 at KME A: 401, no keys" "401/null" \
	"$(http_code "$r")/$(json_get "$(http_body "$r")" .keys)"
check "... KME A still holds them (count did not drop by 100)" true \
	"$([ "$((c0 - c1))" -lt 100 ] && echo true || echo false)"
r=$(sae_curl B "$KME_B_URL/api/v1/keys/sae-a/status")
check "sae-b's own certificate at KME B: 401" 401 "$(http_code "$r")"
r=$(sae_curl X "$KME_B_URL/api/v1/keys/sae-a/status")
check "sae-x's own certificate at KME B: 401" 401 "$(http_code "$r")"
r=$(sae_curl KA "$KME_A_URL/api/v1/keys/sae-b/status")
check "kmsd A's certificate for sae-a at KME A: 200, master sae-a" "200/sae-a" \
	"$(http_code "$r")/$(json_get "$(http_body "$r")" .master_SAE_ID)"
r=$(sae_curl KA "$KME_B_URL/api/v1/keys/sae-a/status")
check "kmsd A's certificate at KME B (other site): 401" 401 "$(http_code "$r")"

r=$(enc A "$KMSD_A_URL" sae-b '{"number":3}')
check "sae-a through kmsd A, enc_keys 3: 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
r=$(dec B "$KME_B_URL" sae-a "$(idsbody "$c")")
check "sae-b fetching them at KME B directly: 401" 401 "$(http_code "$r")"
r=$(dec B "$KMSD_B_URL" sae-a "$(idsbody "$c")")
check "sae-b through kmsd B, dec_keys: 200" 200 "$(http_code "$r")"
check "... the same 3 keys at both sites" "$(pairs "$c")" "$(pairs "$(http_body "$r")")"
check "... 3 of them" 3 "$(pairs "$c" | grep -c .)"

# --- 2. certificate checks at the mTLS servers ---
# refused NAME LOGFILE URL REASON-REGEX
refused() {
	r=$(curl -s --max-time 10 --cacert "$CA" --cert "$P/$1.crt" --key "$P/$1.key" \
		-w '\n%{http_code}' "$3/api/v1/keys/sae-b/status")
	check "$1 at $2: refused in the TLS handshake (no HTTP status)" 000 "$(http_code "$r")"
	check_match "$1 at $2: the log says why" "closed without a request: client certificate refused: $4" \
		"$(log_has "$TB/$2.log" "refused: $4")"
}
for u in kmsd-a:"$KMSD_A_URL" kme-a:"$KME_A_URL"; do
	refused bad-twocn "${u%%:*}" "${u#*:}" 'its subject has 2 CNs \(first "sae-a"\); exactly one is allowed'
	refused bad-client-srvonly "${u%%:*}" "${u#*:}" 'its extendedKeyUsage does not allow clientAuth'
	refused bad-name "${u%%:*}" "${u#*:}" 'its CN "sae-\\x5c\\x22a\\xc3\\xa9\\x01b" \(11 bytes\) is not a valid ID'
	refused rogue "${u%%:*}" "${u#*:}" 'it was not accepted: The certificate is NOT trusted'
done
check "no raw control character or non-ASCII byte in kmsd A's log" 0 \
	"$(LC_ALL=C grep -c "$(printf '[\001-\010\016-\037\177-\377]')" "$TB/kmsd-a.log")"
r=$(sae_curl A "$KMSD_A_URL/api/v1/keys/sae-b/status")
check "a valid SAE after the refusals: 200" 200 "$(http_code "$r")"

# --- 3. server certificates without serverAuth, and the QKD link ---
# kme_alone NAME CERT ROLE LINK-LINE PEER_ID: one qkd-sim with its own config
kme_alone() {
	cat >"$TB/$1.conf" <<EOT
[kme]
id = $5
listen = 127.0.0.1:0
cert = $P/$2.crt
key = $P/$2.key
ca = $CA
saes = sae-a
[link]
role = $3
peer_id = $6
$4
EOT
	"$BINDIR/qkd-sim" --config "$TB/$1.conf" --ready-file "$TB/$1.ready" \
		>"$TB/$1.log" 2>&1 &
	echo $! >"$TB/$1.pid"
	i=0
	while [ ! -s "$TB/$1.ready" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
}
kme_alone s1 bad-server-clionly transmitter "listen = 127.0.0.1:0" kme-a kme-b
port=$(sed -n 's/^api_port=//p' "$TB/s1.ready")
link=$(sed -n 's/^link_port=//p' "$TB/s1.ready")
check_match "a KME with a clientAuth-only server certificate starts" '^[0-9]+$' "$port"
r=$(sae_curl A "https://127.0.0.1:$port/api/v1/keys/sae-b/status" 2>&1)
check "curl refuses its server certificate (no HTTP status)" 000 "$(http_code "$r")"
out=$("$KMSCLIENT" --url "https://127.0.0.1:$port" --cert "$SAE_A_CERT" \
	--key "$SAE_A_KEY" --ca "$CA" status sae-b 2>&1); rc=$?
check "kmsclient refuses it: exit 3 (TLS)" 3 "$rc"
check_match "... saying the purpose is wrong" 'unsuitable certificate purpose' "$out"
# The link's connecting side (a TLS client) checks serverAuth too.
kme_alone s2 kme-b receiver "peer = 127.0.0.1:$link" kme-b kme-a
check_match "the link peer refuses the clientAuth-only KME certificate" \
	'peer certificate not accepted: unsuitable certificate purpose' \
	"$(log_has "$TB/s2.log" 'unsuitable certificate purpose')"
kill "$(cat "$TB/s2.pid")" "$(cat "$TB/s1.pid")" 2>/dev/null
# ... and the listening side (a TLS server) checks clientAuth.
kme_alone s3 kme-a transmitter "listen = 127.0.0.1:0" kme-a kme-b
link=$(sed -n 's/^link_port=//p' "$TB/s3.ready")
kme_alone s4 bad-kme-b-srvonly receiver "peer = 127.0.0.1:$link" kme-b kme-a
check_match "the link listener refuses a serverAuth-only peer certificate" \
	'peer certificate not accepted: unsuitable certificate purpose' \
	"$(log_has "$TB/s3.log" 'unsuitable certificate purpose')"
check "... and the link never came up" 0 "$(grep -c 'QKD link to .* up' "$TB/s3.log")"
kill "$(cat "$TB/s4.pid")" "$(cat "$TB/s3.pid")" 2>/dev/null

# --- 4. /metrics and /healthz on the API port: metrics_sae only ---
for who in A B; do
	[ $who = A ] && url=$KMSD_A_URL || url=$KMSD_B_URL
	for p in metrics healthz; do
		r=$(sae_curl $who "$url/$p")
		check "kmsd $who /$p on the API port with an SAE certificate: 401" 401 "$(http_code "$r")"
	done
done
r=$(curl -s --max-time 10 --cacert "$CA" --cert "$P/prometheus.crt" --key "$P/prometheus.key" \
	-w '\n%{http_code}' "$KMSD_A_URL/metrics")
check "kmsd A /metrics as metrics_sae (CN prometheus): 200" 200 "$(http_code "$r")"
check_match "... Prometheus text" '^# TYPE kmsd_requests_total counter' "$(http_body "$r")"
r=$(curl -s -w '\n%{http_code}' "$KMSD_A_OPS/metrics")
check "kmsd A /metrics on the ops listener: 200" 200 "$(http_code "$r")"
check_match "kmsd A logs the refused /metrics" 'refused GET /metrics on the API port to "sae-a"' \
	"$(log_has "$TB/kmsd-a.log" 'refused GET /metrics')"

# --- 5. kmsd warns when its upstream certificate is the SAE's own kind ---
# kmsd A's config with sae-a's own certificate upstream, on free ports.
sed -e "s|kmsd-a\.sae-a\.|sae-a.|" -e 's|^listen = .*|listen = 127.0.0.1:0|' \
	-e 's|^metrics_listen = .*|metrics_listen = 127.0.0.1:0|' \
	-e "s|^db = .*|db = $TB/w.db|" -e "s|^kek_file = .*|kek_file = $TB/w.kek|" \
	"$TB/kmsd-a.conf" >"$TB/w.conf"
check "the variant uses sae-a's own certificate upstream" 1 "$(grep -c "^cert = $P/sae-a.crt" "$TB/w.conf")"
"$BINDIR/kmsd" --config "$TB/w.conf" --ready-file "$TB/w.ready" >"$TB/w.log" 2>&1 &
wpid=$!
check_match "kmsd warns: the KME cannot tell kmsd from the SAE" \
	'\[sae sae-a\] cert .*sae-a.crt has CN "sae-a" and is issued by \[kmsd\] ca.*give kmsd its own certificate' \
	"$(log_has "$TB/w.log" 'give kmsd its own certificate')"
kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null
check "kmsd A (own upstream certificates) gave no such warning" 0 \
	"$(grep -c 'give kmsd its own certificate' "$TB/kmsd-a.log")"
