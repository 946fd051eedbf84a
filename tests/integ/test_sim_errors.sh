#!/bin/sh
# qkd-sim request checking: every malformed, out-of-range or unsupported
# request gets the right status (400/404/405/413) with an ETSI Error body
# ({"message": string, "details": array if present}), the spec's exact
# wording where it has one, and the KMEs keep working afterwards.
. "$(dirname "$0")/lib.sh"
NO_KMSD=1; export NO_KMSD	# the KMEs alone: no kmsd pool drawing keys
MAX_KEY_PER_REQUEST=100; export MAX_KEY_PER_REQUEST
tb_up

ENC=$KME_A_URL/api/v1/keys/sae-b/enc_keys
DEC=$KME_B_URL/api/v1/keys/sae-a/dec_keys

r=$(sae_curl A "$KME_A_URL/api/v1/keys/sae-b/status")
check "status shows max_key_per_request from the config" 100 \
	"$(json_get "$(http_body "$r")" .max_key_per_request)"

# --- Key request, POST ---
is_err "size 100 (not a multiple of 8)" 400 "$(enc A "$KME_A_URL" sae-b '{"number":1,"size":100}')" \
	"size shall be a multiple of 8"
is_err "size 7" 400 "$(enc A "$KME_A_URL" sae-b '{"size":7}')" "size shall be a multiple of 8"
is_err "size 56 (< min_key_size 64)" 400 "$(enc A "$KME_A_URL" sae-b '{"size":56}')"
is_err "size 8 (< min_key_size)" 400 "$(enc A "$KME_A_URL" sae-b '{"size":8}')"
is_err "size 8200 (> max_key_size 8192)" 400 "$(enc A "$KME_A_URL" sae-b '{"size":8200}')"
is_err "size 0" 400 "$(enc A "$KME_A_URL" sae-b '{"size":0}')"
is_err "size -256" 400 "$(enc A "$KME_A_URL" sae-b '{"size":-256}')"
is_err "size 2^32+256 (wraps to 256 in 32 bits)" 400 "$(enc A "$KME_A_URL" sae-b '{"size":4294967552}')"
is_err "size \"256\" (string)" 400 "$(enc A "$KME_A_URL" sae-b '{"size":"256"}')"
is_err "number 101 (> max_key_per_request 100)" 400 "$(enc A "$KME_A_URL" sae-b '{"number":101}')"
is_err "number 0" 400 "$(enc A "$KME_A_URL" sae-b '{"number":0}')"
is_err "number -1" 400 "$(enc A "$KME_A_URL" sae-b '{"number":-1}')"
is_err "number 2^32+1 (wraps to 1 in 32 bits)" 400 "$(enc A "$KME_A_URL" sae-b '{"number":4294967297}')"
is_err "number 1e100" 400 "$(enc A "$KME_A_URL" sae-b '{"number":1e100}')"
is_err "number \"2\" (string)" 400 "$(enc A "$KME_A_URL" sae-b '{"number":"2"}')"
is_err "number 1.5" 400 "$(enc A "$KME_A_URL" sae-b '{"number":1.5}')"
is_err "number null" 400 "$(enc A "$KME_A_URL" sae-b '{"number":null}')"
is_err "number true" 400 "$(enc A "$KME_A_URL" sae-b '{"number":true}')"
is_err "unknown top-level member" 400 "$(enc A "$KME_A_URL" sae-b '{"number":1,"foo":1}')"
is_err "member name in the wrong case (Number)" 400 "$(enc A "$KME_A_URL" sae-b '{"Number":1}')"
is_err "duplicate member" 400 "$(enc A "$KME_A_URL" sae-b '{"number":1,"number":2}')"
is_err "extension_mandatory [{\"foo\":1}]" 400 \
	"$(enc A "$KME_A_URL" sae-b '{"number":1,"extension_mandatory":[{"foo":1}]}')" \
	"not all extension_mandatory parameters are supported"
is_err "extension_mandatory not an array" 400 \
	"$(enc A "$KME_A_URL" sae-b '{"extension_mandatory":{"foo":1}}')"
is_err "additional_slave_SAE_IDs not an array" 400 \
	"$(enc A "$KME_A_URL" sae-b '{"additional_slave_SAE_IDs":"sae-x"}')"
is_err "additional_slave_SAE_IDs entry not a string" 400 \
	"$(enc A "$KME_A_URL" sae-b '{"additional_slave_SAE_IDs":[1]}')"
r=$(enc A "$KME_A_URL" sae-b '{"number":1,"extension_optional":[{"foo":1}]}')
check "extension_optional [{\"foo\":1}] is accepted: 200" 200 "$(http_code "$r")"
check "extension_optional: one key" 1 "$(json_get "$(http_body "$r")" '.keys | length')"
r=$(enc A "$KME_A_URL" sae-b '{"number":100}')
check "number 100 (= max_key_per_request): 200" 200 "$(http_code "$r")"
check "number 100: 100 keys" 100 "$(json_get "$(http_body "$r")" '.keys | length')"

# --- malformed JSON ---
is_err "truncated JSON" 400 "$(enc A "$KME_A_URL" sae-b '{"number":')"
is_err "JSON array body" 400 "$(enc A "$KME_A_URL" sae-b '[1,2]')"
is_err "JSON null body" 400 "$(enc A "$KME_A_URL" sae-b 'null')"
is_err "JSON string body" 400 "$(enc A "$KME_A_URL" sae-b '"x"')"
is_err "garbage after the object" 400 "$(enc A "$KME_A_URL" sae-b '{"number":1}xyz')"
is_err "not JSON at all" 400 "$(enc A "$KME_A_URL" sae-b 'number=1&size=256')"
printf '{"number":1}\000{"number":2}' >"$TB/nul.json"
is_err "NUL byte inside the body" 400 "$(sae_curl A -X POST -H "$JSON" --data-binary @"$TB/nul.json" "$ENC")"
printf '{"number":1,"extension_optional":[{"s":"\377\376"}]}' >"$TB/utf.json"
is_err "invalid UTF-8 in a string" 400 "$(sae_curl A -X POST -H "$JSON" --data-binary @"$TB/utf.json" "$ENC")"
# 10,000 nested arrays: refused before any parser recurses (depth cap 32)
awk 'BEGIN { printf "{\"extension_optional\":"; for (i = 0; i < 10000; i++) printf "["; for (i = 0; i < 10000; i++) printf "]"; printf "}" }' >"$TB/deep.json"
r=$(sae_curl A -X POST -H "$JSON" --data-binary @"$TB/deep.json" "$ENC")
is_err "10,000 nested arrays" 400 "$r"
check "10,000 nested arrays: the message names the depth" "JSON nested deeper than 32 levels" \
	"$(json_get "$(http_body "$r")" .message)"

# --- body size: 64 KiB cap ---
awk 'BEGIN { printf "{\"number\":1"; for (i = 0; i < 60000; i++) printf " "; printf "}" }' >"$TB/pad.json"
r=$(sae_curl A -X POST -H "$JSON" --data-binary @"$TB/pad.json" "$ENC")
check "60 KB body (under the cap): 200" 200 "$(http_code "$r")"
awk 'BEGIN { printf "{\"extension_optional\":[{\"x\":\""; for (i = 0; i < 70000; i++) printf "A"; printf "\"}]}" }' >"$TB/big.json"
is_err "70 KB body" 413 "$(sae_curl A -X POST -H "$JSON" --data-binary @"$TB/big.json" "$ENC")"
is_err "70 KB body, chunked (no Content-Length)" 413 \
	"$(sae_curl A -X POST -H "$JSON" -H 'Transfer-Encoding: chunked' --data-binary @"$TB/big.json" "$ENC")"
awk 'BEGIN { for (i = 0; i < 250000; i++) printf "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n" }' >"$TB/huge.json"
r=$(sae_curl A -X POST -H "$JSON" --data-binary @"$TB/huge.json" "$ENC")
check "16 MB body: 413" 413 "$(http_code "$r")"
rm -f "$TB/huge.json"

# --- GET form of enc_keys ---
is_err "GET enc_keys?size=100" 400 "$(sae_curl A "$ENC?size=100")" "size shall be a multiple of 8"
is_err "GET enc_keys?number=101" 400 "$(sae_curl A "$ENC?number=101")"
is_err "GET enc_keys?number=0" 400 "$(sae_curl A "$ENC?number=0")"
is_err "GET enc_keys?number=abc" 400 "$(sae_curl A "$ENC?number=abc")"
is_err "GET enc_keys?number=-1" 400 "$(sae_curl A "$ENC?number=-1")"
is_err "GET enc_keys?number=1.5" 400 "$(sae_curl A "$ENC?number=1.5")"
is_err "GET enc_keys?number=" 400 "$(sae_curl A "$ENC?number=")"
is_err "GET enc_keys?number=1&number=2" 400 "$(sae_curl A "$ENC?number=1&number=2")"
is_err "GET enc_keys?number=1&foo=2" 400 "$(sae_curl A "$ENC?number=1&foo=2")"
is_err "GET enc_keys?additional_slave_SAE_IDs=sae-x" 400 "$(sae_curl A "$ENC?additional_slave_SAE_IDs=sae-x")"
is_err "GET enc_keys?number=4294967297" 400 "$(sae_curl A "$ENC?number=4294967297")"
r=$(sae_curl A "$ENC?number=2&size=64")
check "GET enc_keys?number=2&size=64: 200" 200 "$(http_code "$r")"
check "GET enc_keys?number=2&size=64: 2 keys" 2 "$(json_get "$(http_body "$r")" '.keys | length')"

# --- dec_keys ---
c=$(http_body "$(enc A "$KME_A_URL" sae-b '{"number":2}')")
id1=$(json_get "$c" '.keys[0].key_ID'); id2=$(json_get "$c" '.keys[1].key_ID')
is_err "dec_keys empty body" 400 "$(sae_curl B -X POST "$DEC")"
is_err "dec_keys key_IDs []" 400 "$(dec B "$KME_B_URL" sae-a '{"key_IDs":[]}')"
is_err "dec_keys key_IDs not an array" 400 "$(dec B "$KME_B_URL" sae-a "{\"key_IDs\":\"$id1\"}")"
is_err "dec_keys key_ID not a string" 400 "$(dec B "$KME_B_URL" sae-a '{"key_IDs":[{"key_ID":1}]}')"
is_err "dec_keys unknown member" 400 "$(dec B "$KME_B_URL" sae-a "{\"key_IDs\":[{\"key_ID\":\"$id1\"}],\"x\":1}")"
is_err "dec_keys truncated JSON" 400 "$(dec B "$KME_B_URL" sae-a "{\"key_IDs\":[{\"key_ID\":\"$id1\"")"
is_err "dec_keys the same ID twice in one list" 400 \
	"$(dec B "$KME_B_URL" sae-a "{\"key_IDs\":[{\"key_ID\":\"$id1\"},{\"key_ID\":\"$id1\"}]}")"
body=$(awk -v id="$id1" 'BEGIN { printf "{\"key_IDs\":["; for (i = 0; i < 101; i++) printf "%s{\"key_ID\":\"%s\"}", i ? "," : "", id; printf "]}" }')
is_err "dec_keys with 101 key_IDs (> max_key_per_request)" 400 "$(dec B "$KME_B_URL" sae-a "$body")"
is_err "GET dec_keys without key_ID" 400 "$(sae_curl B "$DEC")"
is_err "GET dec_keys with two key_IDs" 400 "$(sae_curl B "$DEC?key_ID=$id1&key_ID=$id2")"
is_err "GET dec_keys with an extra parameter" 400 "$(sae_curl B "$DEC?key_ID=$id1&number=1")"
is_err "GET dec_keys key_ID of 200 characters" 400 \
	"$(sae_curl B "$DEC?key_ID=$(awk 'BEGIN { for (i = 0; i < 200; i++) printf "a" }')")"
is_err "GET dec_keys key_ID with SQL" 400 "$(sae_curl B -G --data-urlencode "key_ID=' OR 1=1 --" "$DEC")" "$NOTFOUND"
dec_same "after all the refused dec_keys: bytes equal to A's" B "$KME_B_URL" sae-a "$c" "after all the refused dec_keys the keys are still there: 200"

# --- multicast limits ---
nine='"s1","s2","s3","s4","s5","s6","s7","s8","s9"'
is_err "9 additional_slave_SAE_IDs (> max_SAE_ID_count 8)" 400 \
	"$(enc A "$KME_A_URL" sae-b "{\"additional_slave_SAE_IDs\":[$nine]}")"
r=$(enc A "$KME_A_URL" sae-b '{"additional_slave_SAE_IDs":["nobody"]}')
is_err "additional slave not attached to the peer" 400 "$r"
check_match "additional slave not attached: the error names it" 'nobody' \
	"$(json_get "$(http_body "$r")" '[.message, (.details // [] | tostring)] | join(" ")')"
is_err "additional slave listed twice" 400 \
	"$(enc A "$KME_A_URL" sae-b '{"additional_slave_SAE_IDs":["sae-x","sae-x"]}')"
is_err "additional slave = the slave" 400 \
	"$(enc A "$KME_A_URL" sae-b '{"additional_slave_SAE_IDs":["sae-b"]}')"
is_err "additional slave = the master" 400 \
	"$(enc A "$KME_A_URL" sae-b '{"additional_slave_SAE_IDs":["sae-a"]}')"
is_err "enc_keys for a slave not at the peer (nobody)" 400 \
	"$(enc A "$KME_A_URL" nobody '{"number":1}')"
is_err "enc_keys for a slave at the own KME (sae-a)" 400 \
	"$(enc A "$KME_A_URL" sae-a '{"number":1}')"

# --- paths and methods ---
for p in /api/v1/keys/sae-b/foo /api/v2/keys/sae-b/status / /api/v1/keys/sae-b \
    /api/v1/keys//status /api/v1/keys/sae-b/status/extra /api/v1/keys/sae-b/enc_keys/ \
    '/api/v1/keys/sae-b%2Fx/status' '/api/v1/keys/../keys/sae-b/status'; do
	is_err "GET $p" 404 "$(sae_curl A --path-as-is "$KME_A_URL$p")"
done
is_err "DELETE enc_keys" 405 "$(sae_curl A -X DELETE "$ENC")"
is_err "PUT dec_keys" 405 "$(sae_curl B -X PUT -H "$JSON" -d '{}' "$DEC")"
is_err "POST status" 405 "$(sae_curl A -X POST -H "$JSON" -d '{}' "$KME_A_URL/api/v1/keys/sae-b/status")"
is_err "PATCH status" 405 "$(sae_curl A -X PATCH "$KME_A_URL/api/v1/keys/sae-b/status")"
r=$(sae_curl A -I "$KME_A_URL/api/v1/keys/sae-b/status")
check_match "HEAD status: not a 5xx, no crash" '^(200|405)$' "$(http_code "$r")"
r=$(sae_curl A --http1.0 "$KME_A_URL/api/v1/keys/sae-b/status")
check "HTTP/1.0 status: 200" 200 "$(http_code "$r")"

# --- still alive and consistent after all of that ---
r=$(enc A "$KME_A_URL" sae-b '{"number":3,"size":512}')
check "enc_keys after the abuse: 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
dec_same "dec_keys after the abuse: bytes equal to A's" B "$KME_B_URL" sae-a "$c"
no_crash
