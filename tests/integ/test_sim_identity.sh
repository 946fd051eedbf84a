#!/bin/sh
# qkd-sim identity: mutual TLS refuses clients without a certificate or with
# one from another CA (and says so in its log); the SAE ID from the
# certificate decides who may do what: SAEs of the other site get 401, a
# valid SAE that is not the keys' slave gets 401 and does not consume them,
# the B side can be master too.
. "$(dirname "$0")/lib.sh"
NO_KMSD=1; export NO_KMSD	# the KMEs alone: no kmsd pool drawing keys
tb_up

# refused_lines: log lines of KME A about connections closed without a request
refused_lines() { grep -c 'closed without a request' "$TB/kme-a.log"; }
# wait_lines N: until KME A logged more than N such lines (2 s at most)
wait_lines() {
	i=0
	while [ "$(refused_lines)" -le "$1" ] && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
	refused_lines
}

# --- TLS layer ---
n0=$(refused_lines)
r=$(sae_curl NONE "$KME_A_URL/api/v1/keys/sae-b/status"); rc=$?
tls_refused "no client certificate: refused in TLS, no HTTP status" "$rc" "$r"
check "no client certificate: no body" "" "$(http_body "$r")"
n1=$(wait_lines "$n0")
check "no client certificate: KME A logs the refusal" true "$([ "$n1" -gt "$n0" ] && echo true || echo false)"

r=$(sae_curl NONE -X POST -d '{}' "$KME_A_URL/api/v1/keys/sae-b/enc_keys"); rc=$?
tls_refused "no client certificate, enc_keys: refused in TLS" "$rc" "$r"
check "no client certificate, enc_keys: no keys" "" "$(http_body "$r")"

n1=$(refused_lines)
r=$(sae_curl ROGUE -X POST -d '{}' "$KME_A_URL/api/v1/keys/sae-b/enc_keys"); rc=$?
tls_refused "rogue CA certificate (CN sae-a): refused in TLS, no HTTP status" "$rc" "$r"
check "rogue CA certificate: no keys" "" "$(http_body "$r")"
n2=$(wait_lines "$n1")
check "rogue CA certificate: KME A logs the refusal" true "$([ "$n2" -gt "$n1" ] && echo true || echo false)"
r=$(sae_curl ROGUE "$KME_B_URL/api/v1/keys/sae-a/dec_keys?key_ID=00000000-0000-4000-8000-000000000000"); rc=$?
tls_refused "rogue CA certificate at KME B: refused in TLS" "$rc" "$r"

# The server's certificate must match what clients verify: curl with the CA
# and a wrong host name fails (sanity of the PKI this suite relies on).
r=$(sae_curl A --resolve "wrong.example:${KME_A_URL##*:}:127.0.0.1" \
	"https://wrong.example:${KME_A_URL##*:}/api/v1/keys/sae-b/status"); rc=$?
# curl 60: the peer certificate cannot be authenticated (not 7: KME A is up)
check "server cert does not claim other host names" 60/000 "$rc/$(http_code "$r")"

# A KME's own certificate (clientAuth too) is not an SAE.
r=$(curl -s --max-time 10 --cacert "$CA" --cert "$(dirname "$CA")/kme-b.crt" \
	--key "$(dirname "$CA")/kme-b.key" -w '\n%{http_code}' -X POST -d '{}' \
	"$KME_A_URL/api/v1/keys/sae-b/enc_keys")
check "KME B's certificate calling KME A's API: 401" 401 "$(http_code "$r")"

# The refused connections did not stop the KME.
r=$(sae_curl A "$KME_A_URL/api/v1/keys/sae-b/status")
check "status after the refused handshakes: 200" 200 "$(http_code "$r")"

# --- SAEs of the other site ---
for op in status enc_keys dec_keys; do
	r=$(sae_curl B "$KME_A_URL/api/v1/keys/sae-a/$op")
	check "sae-b calling KME A $op: 401" 401 "$(http_code "$r")"
	check "sae-b calling KME A $op: message" 'SAE "sae-b" is not attached to KME kme-a' \
		"$(json_get "$(http_body "$r")" .message)"
done
r=$(enc B "$KME_A_URL" sae-b '{"number":1}')
check "sae-b POST enc_keys at KME A: 401" 401 "$(http_code "$r")"
r=$(enc A "$KME_B_URL" sae-b '{"number":1}')
check "sae-a POST enc_keys at KME B: 401" 401 "$(http_code "$r")"
check "sae-a at KME B: no keys" null "$(json_get "$(http_body "$r")" .keys)"
r=$(sae_curl X "$KME_A_URL/api/v1/keys/sae-a/status")
check "sae-x calling KME A: 401" 401 "$(http_code "$r")"

# --- only the named slave gets the keys ---
r=$(enc A "$KME_A_URL" sae-b '{"number":3}')
check "sae-a enc_keys for sae-b: 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
r=$(dec X "$KME_B_URL" sae-a "$(idsbody "$c")")
check "sae-x dec_keys of sae-b's keys: 401" 401 "$(http_code "$r")"
check "sae-x dec_keys of sae-b's keys: no keys" null "$(json_get "$(http_body "$r")" .keys)"
id=$(json_get "$c" '.keys[0].key_ID')
r=$(sae_curl X "$KME_B_URL/api/v1/keys/sae-a/dec_keys?key_ID=$id")
check "sae-x GET dec_keys of sae-b's key: 401" 401 "$(http_code "$r")"
dec_same "sae-b dec_keys: bytes equal to A's" B "$KME_B_URL" sae-a "$c" "sae-b dec_keys after sae-x was refused: 200"
r=$(dec X "$KME_B_URL" sae-a "$(idsbody "$c")")
check_match "sae-x dec_keys of the delivered keys: still refused (400/401)" '^40[01]$' "$(http_code "$r")"

# --- KME B's SAEs as masters, KME A's as slave ---
r=$(enc X "$KME_B_URL" sae-a '{"number":4,"size":384}')
check "sae-x enc_keys at KME B for slave sae-a: 200" 200 "$(http_code "$r")"
cx=$(http_body "$r")
check "sae-x enc_keys: 4 keys" 4 "$(json_get "$cx" '.keys | length')"
r=$(dec A "$KME_A_URL" sae-b "$(idsbody "$cx")")
check "sae-a dec_keys naming the wrong master (sae-b): 400" 400 "$(http_code "$r")"
check "wrong master: ETSI message" "$NOTFOUND" "$(json_get "$(http_body "$r")" .message)"
dec_same "sae-a dec_keys from sae-x: bytes equal to B's" A "$KME_A_URL" sae-x "$cx" "sae-a dec_keys at KME A from master sae-x: 200"
r=$(dec A "$KME_A_URL" sae-x "$(idsbody "$cx")")
check "sae-a dec_keys from sae-x again: 400" 400 "$(http_code "$r")"

r=$(enc B "$KME_B_URL" sae-a '{"number":2}')
check "sae-b enc_keys at KME B for slave sae-a: 200" 200 "$(http_code "$r")"
cb=$(http_body "$r")
r=$(dec X "$KME_B_URL" sae-b "$(idsbody "$cb")")
check_match "sae-x at KME B cannot read sae-b's own enc_keys (400/401)" '^40[01]$' "$(http_code "$r")"
dec_same "sae-a dec_keys from master sae-b: bytes equal" A "$KME_A_URL" sae-b "$cb"

# --- the IDs of both directions never collide ---
all=$( (pairs "$c"; pairs "$cx"; pairs "$cb") | cut -d' ' -f1)
check "key IDs of both directions are distinct" "$(printf '%s\n' "$all" | wc -l)" \
	"$(printf '%s\n' "$all" | sort -u | wc -l)"

no_crash
