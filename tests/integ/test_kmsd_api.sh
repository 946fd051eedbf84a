#!/bin/sh
# kmsd: the ETSI GS QKD 014 API through kmsd A (master side, sae-a) and
# kmsd B (slave side, sae-b and sae-x): status, enc_keys/dec_keys in both
# forms with byte-identical keys at both sites, the spec's errors passed
# through, multicast, and the ACL / identity refusals.
. "$(dirname "$0")/lib.sh"
tb_up

ENC=$KMSD_A_URL/api/v1/keys/sae-b/enc_keys
DEC=$KMSD_B_URL/api/v1/keys/sae-a/dec_keys

# bytes NAME CONTAINER BITS: every key decodes to BITS/8 bytes.
bytes() {
	want=$(($3 / 8))
	bad=$(printf '%s' "$2" | jq -r '.keys[].key' 2>/dev/null | while read -r k; do
		n=$(printf '%s' "$k" | base64 -d 2>/dev/null | wc -c)
		[ "$n" -eq "$want" ] || echo "$n"
	done)
	n=$(json_get "$2" '.keys | length')
	if [ "${n:-0}" -gt 0 ] && [ -z "$bad" ]; then ok "$1"; else nok "$1: $n keys, wrong lengths: [$bad]"; fi
}

# --- status ---
r=$(sae_curl A "$KMSD_A_URL/api/v1/keys/sae-b/status")
check "status at kmsd A: 200" 200 "$(http_code "$r")"
st=$(http_body "$r")
check "status: master/slave SAE IDs" "sae-a/sae-b" "$(json_get "$st" '"\(.master_SAE_ID)/\(.slave_SAE_ID)"')"
check "status: source/target KME" "kme-a/kme-b" "$(json_get "$st" '"\(.source_KME_ID)/\(.target_KME_ID)"')"
check "status: max_key_per_request is kmsd's 1024" 1024 "$(json_get "$st" .max_key_per_request)"
check "status: key_size 256" 256 "$(json_get "$st" .key_size)"
# kmsd's count is the KME's (which grows with the key rate) plus the pool:
# read the pool, the KME's count, kmsd's, the KME's again and the pool
# again; retry while a refill moves the pool.
poolkeys() { curl -s "$KMSD_A_OPS/healthz" | jq -r '.pools[] | select(.master == "sae-a" and .slave == "sae-b") | .keys'; }
i=0	# the first refill may still be running
while [ "$(poolkeys)" -lt 256 ] 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
for try in 1 2 3 4 5 6 7 8 9 10; do
	pool=$(poolkeys)
	kme1=$(json_get "$(http_body "$(sae_curl KA "$KME_A_URL/api/v1/keys/sae-b/status")")" .stored_key_count)
	got=$(json_get "$(http_body "$(sae_curl A "$KMSD_A_URL/api/v1/keys/sae-b/status")")" .stored_key_count)
	kme2=$(json_get "$(http_body "$(sae_curl KA "$KME_A_URL/api/v1/keys/sae-b/status")")" .stored_key_count)
	[ "$(poolkeys)" = "$pool" ] && break
	sleep 0.3
done
check "pool between its watermarks (256..1024): $pool" true \
	"$([ "${pool:-0}" -ge 256 ] && [ "${pool:-0}" -le 1024 ] && echo true || echo false)"
check "status: stored_key_count ($got) = KME's (between $kme1 and $kme2) + pool ($pool)" true \
	"$([ "${got:-0}" -ge $((${kme1:-0} + ${pool:-0})) ] && [ "${got:-0}" -le $((${kme2:-0} + ${pool:-0})) ] && echo true || echo false)"
r=$(sae_curl A "$KMSD_A_URL/api/v1/keys/sae-x/status")
check "status for sae-x (peer, not pooled) at kmsd A: 200" 200 "$(http_code "$r")"
check "status for sae-x: slave sae-x" sae-x "$(json_get "$(http_body "$r")" .slave_SAE_ID)"
r=$(sae_curl B "$KMSD_B_URL/api/v1/keys/sae-a/status")
check "status at kmsd B (sae-b -> sae-a): 200" 200 "$(http_code "$r")"
check "status at kmsd B: max_key_per_request 1024" 1024 "$(json_get "$(http_body "$r")" .max_key_per_request)"

# --- enc_keys POST at A, dec_keys POST at B ---
r=$(enc A "$KMSD_A_URL" sae-b '{"number":13,"size":256}')
check "enc_keys POST 13 x 256 at kmsd A: 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
check "enc_keys: 13 keys" 13 "$(json_get "$c" '.keys | length')"
check "enc_keys: 13 distinct key IDs" 13 "$(json_get "$c" '[.keys[].key_ID] | unique | length')"
check_match "enc_keys: key IDs are UUIDs" "$UUID_RE" "$(json_get "$c" '.keys[0].key_ID')"
bytes "enc_keys: every key is 32 bytes" "$c" 256
dec_same "dec_keys: the 13 keys byte-identical to A's" B "$KMSD_B_URL" sae-a "$c" "dec_keys POST of the 13 at kmsd B: 200"
r=$(dec B "$KMSD_B_URL" sae-a "$(idsbody "$c")")
is_err "second dec_keys of the same 13 IDs" 400 "$r" "$NOTFOUND"

# --- GET forms ---
r=$(sae_curl A "$ENC?number=2")
check "enc_keys GET ?number=2: 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
check "enc_keys GET: 2 keys" 2 "$(json_get "$c" '.keys | length')"
id=$(json_get "$c" '.keys[0].key_ID'); id2=$(json_get "$c" '.keys[1].key_ID')
r=$(sae_curl B "$DEC?key_ID=$id")
check "dec_keys GET ?key_ID=: 200" 200 "$(http_code "$r")"
check "dec_keys GET: the same bytes" "$(json_get "$c" '.keys[0].key')" "$(json_get "$(http_body "$r")" '.keys[0].key')"
check "dec_keys GET: the same ID" "$id" "$(json_get "$(http_body "$r")" '.keys[0].key_ID')"
is_err "second dec_keys GET of the same ID" 400 "$(sae_curl B "$DEC?key_ID=$id")" "$NOTFOUND"
r=$(sae_curl B "$DEC?key_ID=$id2")
check "dec_keys GET of the other key: same bytes" "$(json_get "$c" '.keys[1].key')" "$(json_get "$(http_body "$r")" '.keys[0].key')"
r=$(sae_curl A "$ENC")
check "enc_keys GET without parameters: 200, one key" 200/1 "$(http_code "$r")/$(json_get "$(http_body "$r")" '.keys | length')"
c=$(http_body "$r")
dec_same "enc_keys GET default: same bytes at B" B "$KMSD_B_URL" sae-a "$c"

# --- non-default size: through to the KME ---
r=$(enc A "$KMSD_A_URL" sae-b '{"number":5,"size":512}')
check "enc_keys 5 x 512 at kmsd A: 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
bytes "enc_keys 512: every key is 64 bytes" "$c" 512
dec_same "512-bit keys identical at B" B "$KMSD_B_URL" sae-a "$c" "dec_keys of the 512-bit keys at kmsd B: 200"
bytes "dec_keys 512: every key is 64 bytes" "$(http_body "$r")" 512
r=$(sae_curl A "$ENC?number=3&size=128")
check "enc_keys GET 3 x 128: 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
bytes "enc_keys 128: every key is 16 bytes" "$c" 128
dec_same "128-bit keys identical at B" B "$KMSD_B_URL" sae-a "$c"

# --- kmsd's own limit: 1024 per request ---
r=$(enc A "$KMSD_A_URL" sae-b '{"number":1025}')
is_err "enc_keys number 1025 (> kmsd's 1024)" 400 "$r"

# --- spec errors pass through ---
is_err "size 250" 400 "$(enc A "$KMSD_A_URL" sae-b '{"number":1,"size":250}')" "size shall be a multiple of 8"
is_err "GET size=250" 400 "$(sae_curl A "$ENC?size=250")" "size shall be a multiple of 8"
is_err "bad JSON" 400 "$(enc A "$KMSD_A_URL" sae-b '{"number":')"
is_err "JSON array body" 400 "$(enc A "$KMSD_A_URL" sae-b '[1]')"
is_err "number 0" 400 "$(enc A "$KMSD_A_URL" sae-b '{"number":0}')"
is_err "number \"2\"" 400 "$(enc A "$KMSD_A_URL" sae-b '{"number":"2"}')"
is_err "extension_mandatory [{\"foo\":1}]" 400 \
	"$(enc A "$KMSD_A_URL" sae-b '{"number":1,"extension_mandatory":[{"foo":1}]}')" \
	"not all extension_mandatory parameters are supported"
for p in /api/v1/keys/sae-b/foo /api/v2/keys/sae-b/status / /api/v1/keys/sae-b; do
	is_err "GET $p" 404 "$(sae_curl A --path-as-is "$KMSD_A_URL$p")"
done
is_err "dec_keys key_IDs []" 400 "$(dec B "$KMSD_B_URL" sae-a '{"key_IDs":[]}')"
is_err "dec_keys bad JSON" 400 "$(dec B "$KMSD_B_URL" sae-a '{"key_IDs":[')"
is_err "dec_keys of an unknown ID" 400 \
	"$(dec B "$KMSD_B_URL" sae-a '{"key_IDs":[{"key_ID":"00000000-0000-4000-8000-000000000000"}]}')" "$NOTFOUND"
is_err "GET dec_keys without key_ID" 400 "$(sae_curl B "$DEC")"
r=$(enc A "$KMSD_A_URL" sae-b '{"number":1,"extension_optional":[{"foo":1}]}')
check "extension_optional is accepted: 200, one key" 200/1 "$(http_code "$r")/$(json_get "$(http_body "$r")" '.keys | length')"
c=$(http_body "$r")
dec_same "extension_optional key identical at B" B "$KMSD_B_URL" sae-a "$c"

# --- multicast: additional_slave_SAE_IDs ---
r=$(enc A "$KMSD_A_URL" sae-b '{"number":3,"additional_slave_SAE_IDs":["sae-x"]}')
check "enc_keys with additional slave sae-x: 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
check "multicast: 3 keys" 3 "$(json_get "$c" '.keys | length')"
dec_same "multicast: sae-b's keys identical" B "$KMSD_B_URL" sae-a "$c" "multicast: sae-b fetches at kmsd B: 200"
dec_same "multicast: sae-x's keys identical" X "$KMSD_B_URL" sae-a "$c" "multicast: sae-x fetches at kmsd B: 200"
is_err "multicast: sae-x fetching a second time" 400 "$(dec X "$KMSD_B_URL" sae-a "$(idsbody "$c")")"
r=$(enc A "$KMSD_A_URL" sae-x '{"number":2}')
check "enc_keys for sae-x (peer, not pooled) at kmsd A: 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
dec_same "keys for sae-x identical at kmsd B" X "$KMSD_B_URL" sae-a "$c"

# --- ACL and identity ---
r=$(sae_curl B "$KMSD_A_URL/api/v1/keys/sae-a/status")
is_err "sae-b at kmsd A (not a local SAE): status" 401 "$r"
is_err "sae-b at kmsd A: enc_keys" 401 "$(enc B "$KMSD_A_URL" sae-a '{"number":1}')"
is_err "sae-x at kmsd A: enc_keys" 401 "$(enc X "$KMSD_A_URL" sae-b '{"number":1}')"
is_err "sae-a at kmsd B (not a local SAE): enc_keys" 401 "$(enc A "$KMSD_B_URL" sae-b '{"number":1}')"
for who in ROGUE NONE; do
	r=$(sae_curl "$who" "$KMSD_A_URL/api/v1/keys/sae-b/status"); rc=$?
	tls_refused "$who certificate at kmsd A: TLS refused (no HTTP answer)" "$rc" "$r"
	r=$(sae_curl "$who" -X POST -H "$JSON" -d '{"number":1}' "$ENC"); rc=$?
	tls_refused "$who certificate: enc_keys refused at TLS" "$rc" "$r"
	check "$who certificate: enc_keys refused at TLS, no keys" "" "$(http_body "$r")"
	r=$(sae_curl "$who" "$KMSD_B_URL/api/v1/keys/sae-a/status"); rc=$?
	tls_refused "$who certificate at kmsd B: TLS refused" "$rc" "$r"
done
is_err "sae-a enc_keys for sae-z (not in its peers)" 401 "$(enc A "$KMSD_A_URL" sae-z '{"number":1}')"
is_err "sae-a GET enc_keys for sae-z" 401 "$(sae_curl A "$KMSD_A_URL/api/v1/keys/sae-z/enc_keys")"
is_err "sae-a status for sae-z" 401 "$(sae_curl A "$KMSD_A_URL/api/v1/keys/sae-z/status")"
is_err "sae-a enc_keys with additional slave sae-z" 401 \
	"$(enc A "$KMSD_A_URL" sae-b '{"number":1,"additional_slave_SAE_IDs":["sae-z"]}')"
is_err "sae-b dec_keys from sae-z (not in its peers)" 401 \
	"$(dec B "$KMSD_B_URL" sae-z '{"key_IDs":[{"key_ID":"00000000-0000-4000-8000-000000000000"}]}')"

# Keys meant for sae-b: sae-x may not take them, and sae-b still gets them.
r=$(enc A "$KMSD_A_URL" sae-b '{"number":13}')
c=$(http_body "$r")
check "13 keys for sae-b: 200" 200 "$(http_code "$r")"
is_err "sae-x at kmsd B takes sae-b's keys (POST)" 401 "$(dec X "$KMSD_B_URL" sae-a "$(idsbody "$c")")"
is_err "sae-x at kmsd B takes one of sae-b's keys (GET)" 401 \
	"$(sae_curl X "$DEC?key_ID=$(json_get "$c" '.keys[0].key_ID')")"
dec_same "sae-b's keys identical to A's" B "$KMSD_B_URL" sae-a "$c" "sae-b gets its keys after sae-x's attempts: 200"

# --- both daemons still there, no sanitizer report ---
kmsd_alive
kmsd_down_clean
