#!/bin/sh
# qkd-sim pair, the happy paths of ETSI GS QKD 014: Get status, enc_keys
# (POST and GET forms, several key sizes) at KME A, dec_keys (POST and GET)
# at KME B with byte equality, once-only delivery, all-or-nothing dec_keys,
# wrong master.
. "$(dirname "$0")/lib.sh"
NO_KMSD=1; export NO_KMSD	# the KMEs alone: no kmsd pool drawing keys
tb_up

# Distinct decoded key lengths (bytes) of a Key container, one per line.
keylens() {
	for k in $(printf '%s' "$1" | jq -r '.keys[].key' 2>/dev/null); do
		printf '%s' "$k" | base64 -d 2>/dev/null | wc -c
	done | sort -u | tr -d ' '
}
# Number of key_IDs that look like UUIDs.
uuids() { printf '%s' "$1" | jq -r '.keys[].key_ID' 2>/dev/null | grep -cE "$UUID_RE"; }

# --- Get status ---
r=$(sae_curl A "$KME_A_URL/api/v1/keys/sae-b/status")
check "status A->sae-b: 200" 200 "$(http_code "$r")"
s=$(http_body "$r")
check "status: source_KME_ID" kme-a "$(json_get "$s" .source_KME_ID)"
check "status: target_KME_ID" kme-b "$(json_get "$s" .target_KME_ID)"
check "status: master_SAE_ID is the caller" sae-a "$(json_get "$s" .master_SAE_ID)"
check "status: slave_SAE_ID" sae-b "$(json_get "$s" .slave_SAE_ID)"
check "status: key_size" 256 "$(json_get "$s" .key_size)"
check "status: stored_key_count > 0" true "$(json_get "$s" '.stored_key_count > 0')"
check "status: max_key_count" 100000 "$(json_get "$s" .max_key_count)"
check "status: stored_key_count <= max_key_count" true \
	"$(json_get "$s" '.stored_key_count <= .max_key_count')"
check "status: max_key_per_request" 128 "$(json_get "$s" .max_key_per_request)"
check "status: max_key_size" 8192 "$(json_get "$s" .max_key_size)"
check "status: min_key_size" 64 "$(json_get "$s" .min_key_size)"
check "status: max_SAE_ID_count" 8 "$(json_get "$s" .max_SAE_ID_count)"
check "status: integers are JSON numbers" number "$(json_get "$s" '.stored_key_count | type')"

r=$(sae_curl A "$KME_A_URL/api/v1/keys/sae-x/status")
check "status A->sae-x (also at KME B): 200" 200 "$(http_code "$r")"
check "status A->sae-x: slave_SAE_ID" sae-x "$(json_get "$(http_body "$r")" .slave_SAE_ID)"

r=$(sae_curl B "$KME_B_URL/api/v1/keys/sae-a/status")
check "status B->sae-a: 200" 200 "$(http_code "$r")"
s=$(http_body "$r")
check "status at B: source_KME_ID" kme-b "$(json_get "$s" .source_KME_ID)"
check "status at B: target_KME_ID" kme-a "$(json_get "$s" .target_KME_ID)"
check "status at B: master_SAE_ID" sae-b "$(json_get "$s" .master_SAE_ID)"

for bad in nobody sae-a; do
	r=$(sae_curl A "$KME_A_URL/api/v1/keys/$bad/status")
	check "status for slave $bad (not at the peer KME): 400" 400 "$(http_code "$r")"
	check_match "status for slave $bad: message names it" "$bad" \
		"$(json_get "$(http_body "$r")" .message)"
done

# --- enc_keys with an empty body: one key of 256 bits ---
hdr=$TB/hdr.txt
r=$(sae_curl A -D "$hdr" -X POST "$KME_A_URL/api/v1/keys/sae-b/enc_keys")
check "enc_keys empty POST body: 200" 200 "$(http_code "$r")"
c1=$(http_body "$r")
check "enc_keys empty body: 1 key" 1 "$(json_get "$c1" '.keys | length')"
check "enc_keys empty body: 32-byte key" 32 "$(keylens "$c1")"
check "enc_keys: key_ID is a UUID" 1 "$(uuids "$c1")"
check_match "enc_keys: Content-Type application/json" \
	'^[Cc]ontent-[Tt]ype: application/json' "$(grep -i '^content-type' "$hdr")"

r=$(dec B "$KME_B_URL" sae-a "$(idsbody "$c1")")
check "dec_keys at B: 200" 200 "$(http_code "$r")"
same "dec_keys at B: same key_ID and bytes as enc_keys at A" \
	"$(pairs "$c1")" "$(pairs "$(http_body "$r")")"

r=$(dec B "$KME_B_URL" sae-a "$(idsbody "$c1")")
check "dec_keys of the same ID again: 400" 400 "$(http_code "$r")"
check "dec_keys again: ETSI message" "$NOTFOUND" "$(json_get "$(http_body "$r")" .message)"
check "dec_keys again: no keys in the answer" null "$(json_get "$(http_body "$r")" .keys)"

# --- several keys, several sizes (bits -> bytes), POST form ---
for spec in "5 256 32" "4 64 8" "3 512 64" "2 1000 125" "2 8192 1024" "128 256 32"; do
	set -- $spec
	r=$(enc A "$KME_A_URL" sae-b "{\"number\":$1,\"size\":$2}")
	check "enc_keys number=$1 size=$2: 200" 200 "$(http_code "$r")"
	c=$(http_body "$r")
	check "enc_keys number=$1 size=$2: $1 keys" "$1" "$(json_get "$c" '.keys | length')"
	check "enc_keys number=$1 size=$2: every key is $3 bytes" "$3" "$(keylens "$c")"
	check "enc_keys number=$1 size=$2: distinct UUID key_IDs" "$1" \
		"$(printf '%s' "$c" | jq -r '.keys[].key_ID' | grep -E "$UUID_RE" | sort -u | wc -l | tr -d ' ')"
	check "enc_keys number=$1 size=$2: distinct key bytes" "$1" \
		"$(printf '%s' "$c" | jq -r '.keys[].key' | sort -u | wc -l | tr -d ' ')"
	r=$(dec B "$KME_B_URL" sae-a "$(idsbody "$c")")
	check "dec_keys at B of $1 x $2 bits: 200" 200 "$(http_code "$r")"
	same "dec_keys at B of $1 x $2 bits: bytes equal to A's" \
		"$(pairs "$c")" "$(pairs "$(http_body "$r")")"
done

# --- GET forms ---
r=$(sae_curl A "$KME_A_URL/api/v1/keys/sae-b/enc_keys?number=3&size=128")
check "GET enc_keys?number=3&size=128: 200" 200 "$(http_code "$r")"
cg=$(http_body "$r")
check "GET enc_keys: 3 keys" 3 "$(json_get "$cg" '.keys | length')"
check "GET enc_keys: 16-byte keys" 16 "$(keylens "$cg")"
got=$TB/got.txt; : >"$got"
for id in $(json_get "$cg" '.keys[].key_ID'); do
	r=$(sae_curl B "$KME_B_URL/api/v1/keys/sae-a/dec_keys?key_ID=$id")
	check "GET dec_keys?key_ID=$id: 200" 200 "$(http_code "$r")"
	check "GET dec_keys: exactly one key" 1 "$(json_get "$(http_body "$r")" '.keys | length')"
	pairs "$(http_body "$r")" >>"$got"
done
same "GET dec_keys: bytes equal to A's" "$(pairs "$cg")" "$(sort "$got")"

r=$(sae_curl A "$KME_A_URL/api/v1/keys/sae-b/enc_keys")
check "GET enc_keys without query: 200" 200 "$(http_code "$r")"
check "GET enc_keys without query: one 32-byte key" "1 32" \
	"$(json_get "$(http_body "$r")" '.keys | length') $(keylens "$(http_body "$r")")"
cq=$(http_body "$r")

# --- all or nothing ---
r=$(enc A "$KME_A_URL" sae-b '{"number":2}')
c2=$(http_body "$r")
id1=$(json_get "$c2" '.keys[0].key_ID'); id2=$(json_get "$c2" '.keys[1].key_ID')
unknown=00000000-0000-4000-8000-000000000000
r=$(dec B "$KME_B_URL" sae-a "{\"key_IDs\":[{\"key_ID\":\"$id1\"},{\"key_ID\":\"$unknown\"},{\"key_ID\":\"$id2\"}]}")
check "dec_keys with one unknown ID among known ones: 400" 400 "$(http_code "$r")"
check "dec_keys with an unknown ID: ETSI message" "$NOTFOUND" "$(json_get "$(http_body "$r")" .message)"
check "dec_keys with an unknown ID: no keys leaked" null "$(json_get "$(http_body "$r")" .keys)"
# the wrong master in the path: the keys are sae-a's, not sae-x's
r=$(dec B "$KME_B_URL" sae-x "$(idsbody "$c2")")
check "dec_keys with the wrong master in the path: 400" 400 "$(http_code "$r")"
check "dec_keys wrong master: ETSI message" "$NOTFOUND" "$(json_get "$(http_body "$r")" .message)"
dec_same "after the refused calls: bytes equal to A's" B "$KME_B_URL" sae-a "$c2" "after the refused calls the known keys are still there: 200"

# The keys of the GET-without-query call, fetched with the GET form of
# dec_keys, a second time: refused.
idq=$(json_get "$cq" '.keys[0].key_ID')
r=$(sae_curl B "$KME_B_URL/api/v1/keys/sae-a/dec_keys?key_ID=$idq")
same "GET dec_keys of the default key: bytes equal to A's" "$(pairs "$cq")" "$(pairs "$(http_body "$r")")"
r=$(sae_curl B "$KME_B_URL/api/v1/keys/sae-a/dec_keys?key_ID=$idq")
check "GET dec_keys of the same ID again: 400" 400 "$(http_code "$r")"

# A key is gone from KME A once assigned: the master cannot read it back.
r=$(dec A "$KME_A_URL" sae-a "$(idsbody "$c2")")
check_match "dec_keys at A by the master itself: refused (400/401)" '^40[01]$' "$(http_code "$r")"
check "dec_keys at A by the master: no keys" null "$(json_get "$(http_body "$r")" .keys)"

# Status afterwards: the count went down but the KME is fine.
r=$(sae_curl A "$KME_A_URL/api/v1/keys/sae-b/status")
check "status after the run: 200" 200 "$(http_code "$r")"

no_crash
