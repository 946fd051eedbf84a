#!/bin/sh
# qkd-sim out of key material: a slow link (2560 bit/s = 10 keys of 256 bits
# per second) capped at 20 stored keys. Draining gives 503 "not enough key
# material...", never a crash or a partial answer; the store never exceeds
# max_key_count; the key rate refills it; a 503 consumes nothing.
. "$(dirname "$0")/lib.sh"
NO_KMSD=1; export NO_KMSD	# the KMEs alone: no kmsd pool drawing keys
KEY_RATE=2560 MAX_KEY_COUNT=20; export KEY_RATE MAX_KEY_COUNT
tb_up

count() { json_get "$(http_body "$(sae_curl A "$KME_A_URL/api/v1/keys/sae-b/status")")" .stored_key_count; }

r=$(sae_curl A "$KME_A_URL/api/v1/keys/sae-b/status")
check "status: max_key_count from the config" 20 "$(json_get "$(http_body "$r")" .max_key_count)"

# Let it fill up: after 3.5 s at 10 keys/s it would hold 35 without the cap.
sleep 3.5
n=$(count)
check "store is full after 3.5 s: stored_key_count = max_key_count" 20 "$n"

r=$(enc A "$KME_A_URL" sae-b '{"number":21}')
check "number 21 > max_key_count 20: 503" 503 "$(http_code "$r")"
check_match "number 21: not enough key material" '^not enough key material' \
	"$(json_get "$(http_body "$r")" .message)"
check "number 21: no keys" null "$(json_get "$(http_body "$r")" .keys)"
check "a refused request consumed nothing" 20 "$(count)"

# Drain: 5 keys per call until 503.
got=$TB/got.txt; : >"$got"
codes=""; i=0; msg=""
while [ $i -lt 40 ]; do
	r=$(enc A "$KME_A_URL" sae-b '{"number":5}')
	code=$(http_code "$r")
	codes="$codes $code"
	if [ "$code" = 200 ]; then
		pairs "$(http_body "$r")" >>"$got"
	else
		msg=$(json_get "$(http_body "$r")" .message)
		break
	fi
	i=$((i + 1))
done
check "draining ends with 503" 503 "$code"
check_match "draining: 503 message" '^not enough key material' "$msg"
check "draining: every answer before the 503 was a 200" "" \
	"$(printf '%s\n' $codes | sed '$d' | grep -v '^200$' | tr '\n' ' ')"
n=$(grep -c . "$got")
check "draining: got at least the 20 stored keys" true "$([ "$n" -ge 20 ] && echo true || echo false)"
check "draining: every 200 carried exactly 5 keys" 0 "$((n % 5))"
check "draining: no key ID twice" "$n" "$(cut -d' ' -f1 "$got" | sort -u | wc -l | tr -d ' ')"

# Refills at the key rate: within 2 s one more key.
sleep 1.5
r=$(enc A "$KME_A_URL" sae-b '{"number":5}')
check "after 1.5 s of refill: enc_keys 5 keys: 200" 200 "$(http_code "$r")"
pairs "$(http_body "$r")" >>"$got"

# 128 keys of 8192 bits: 32 times the default size, can never be served here.
r=$(enc A "$KME_A_URL" sae-b '{"number":128,"size":8192}')
check "128 x 8192 bits from a 20-key store: 503" 503 "$(http_code "$r")"
r=$(enc A "$KME_A_URL" sae-b '{"number":1,"size":8192}')
check_match "1 x 8192 bits: 200 or 503, nothing else" '^(200|503)$' "$(http_code "$r")"
[ "$(http_code "$r")" = 200 ] && pairs "$(http_body "$r")" >>"$got"

# Hammer the empty store from 4 clients for a while: only 200/503.
for c in 1 2 3 4; do
	( j=0; while [ $j -lt 15 ]; do
		enc A "$KME_A_URL" sae-b '{"number":3}' >"$TB/h$c.$j"; j=$((j + 1)); done ) &
done
wait
for f in "$TB"/h*.*; do
	case $(tail -n 1 "$f") in
	200) sed '$d' "$f" | jq -r '.keys[] | "\(.key_ID) \(.key)"' >>"$got" ;;
	503) ;;
	*) echo "$(tail -n 1 "$f")" >>"$TB/badcodes" ;;
	esac
done
check "4 clients on an empty store: only 200 and 503" "" "$(cat "$TB/badcodes" 2>/dev/null)"
n=$(grep -c . "$got")
check "all keys handed out: no key ID twice" "$n" "$(cut -d' ' -f1 "$got" | sort -u | wc -l | tr -d ' ')"
check "status still answers, count within the cap" true \
	"$(json_get "$(http_body "$(sae_curl A "$KME_A_URL/api/v1/keys/sae-b/status")")" '.stored_key_count <= 20')"

# Every key handed out is at B with the same bytes (in chunks of 100 IDs).
sort "$got" >"$TB/a.txt"
: >"$TB/b.txt"
split -l 100 "$TB/a.txt" "$TB/chunk."
for f in "$TB"/chunk.*; do
	body=$(cut -d' ' -f1 "$f" | jq -R -s -c '{key_IDs: [split("\n")[] | select(. != "") | {key_ID: .}]}')
	r=$(dec B "$KME_B_URL" sae-a "$body")
	pairs "$(http_body "$r")" >>"$TB/b.txt"
done
same "every key handed out while starved is equal at B" "$(cat "$TB/a.txt")" "$(sort "$TB/b.txt")"

no_crash
