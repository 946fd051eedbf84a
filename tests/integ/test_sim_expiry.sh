#!/bin/sh
# qkd-sim: assigned keys nobody fetches. With key_ttl_s = 3 and
# max_keys_per_pair = 20 (SQLite stores): a key is fetchable at the slave's
# KME before its TTL and not after; expired keys are wiped (no row left in
# kme-b.db, read with sqlite3) and counted in /metrics; a master/slave pair
# with 20 keys waiting gets 503 for more, another pair does not, and a fetch
# makes room again.
. "$(dirname "$0")/lib.sh"
NO_KMSD=1; KEY_TTL_S=3; MAX_KEYS_PER_PAIR=20
STATE_DIR=$TB/state
export NO_KMSD KEY_TTL_S MAX_KEYS_PER_PAIR STATE_DIR
tb_up

metric() { curl -s --max-time 5 "$1/metrics" | awk -v m="$2" '$1 == m { print $2; exit }'; }
EXPIRED=qkdsim_keys_expired_total
WAITING=qkdsim_assigned_keys
REFUSED='qkdsim_assign_refused_total{reason="pair_cap"}'
akeys() { sqlite3 -readonly "$STATE_DIR/kme-b.db" 'SELECT count(*) FROM akeys' 2>&1; }
# ids_of CONTAINER FROM COUNT: a Key IDs body with keys FROM.. of a container
ids_of() { printf '%s' "$1" | jq -c "{key_IDs: [.keys[$2:$2+$3][] | {key_ID}]}"; }

check "sqlite3 is installed (mk/deps.sh)" 0 "$(command -v sqlite3 >/dev/null; echo $?)"
check "metrics listener at B answers" 0 "$(metric "$KME_B_OPS" "$EXPIRED")"
check "nothing waiting at B at the start" 0 "$(metric "$KME_B_OPS" "$WAITING")"

# --- before the TTL: fetchable ---
r=$(enc A "$KME_A_URL" sae-b '{"number":5}')
check "enc_keys 5 (early): 200" 200 "$(http_code "$r")"
early=$(http_body "$r")
t_early=$(date +%s%N)
r=$(dec B "$KME_B_URL" sae-a "$(ids_of "$early" 0 2)")
check "2 of the early keys fetched at B before the TTL: 200" 200 "$(http_code "$r")"
same "those 2 keys: bytes equal at A and B" "$(printf '%s' "$early" | jq -c '.keys[0:2]')" \
	"$(http_body "$r" | jq -c '.keys')"

# --- the cap per pair (3 early keys still waiting) ---
r=$(enc A "$KME_A_URL" sae-b '{"number":17}')
check "enc_keys 17 more (20 waiting): 200" 200 "$(http_code "$r")"
more=$(http_body "$r")
check "B counts 20 waiting" 20 "$(metric "$KME_B_OPS" "$WAITING")"
check "sqlite3: 20 assigned rows in kme-b.db" 20 "$(akeys)"
r=$(enc A "$KME_A_URL" sae-b '{"number":1}')
check "enc_keys 1 over the cap: 503" 503 "$(http_code "$r")"
check_match "the 503 says why" 'too many keys waiting: 20 keys from master SAE \\?"sae-a\\?" wait for slave SAE \\?"sae-b\\?" at KME kme-b \(max_keys_per_pair 20\)' \
	"$(json_get "$(http_body "$r")" .message)"
check "B counted the refusal" 1 "$(metric "$KME_B_OPS" "$REFUSED")"
check "still 20 rows at B (nothing assigned)" 20 "$(akeys)"
r=$(enc X "$KME_B_URL" sae-a '{"number":2}')
check "another pair (sae-x -> sae-a) is not held back: 200" 200 "$(http_code "$r")"
r=$(dec B "$KME_B_URL" sae-a "$(ids_of "$more" 0 2)")
check "sae-b fetches 2: 200" 200 "$(http_code "$r")"
r=$(enc A "$KME_A_URL" sae-b '{"number":2}')
check "room for 2 again: 200" 200 "$(http_code "$r")"
late=$(http_body "$r")
t_late=$(date +%s%N)

# --- after the TTL: not fetchable, wiped, counted ---
# Every key so far was assigned by t_late; wait TTL + the 1 s sweep + margin.
while [ $(( ($(date +%s%N) - t_late) / 1000000 )) -lt 4600 ]; do sleep 0.2; done
r=$(dec B "$KME_B_URL" sae-a "$(ids_of "$early" 2 3)")
check "early keys after the TTL: 400" 400 "$(http_code "$r")"
check "... with the spec's message" "$NOTFOUND" "$(json_get "$(http_body "$r")" .message)"
r=$(dec B "$KME_B_URL" sae-a "$(ids_of "$late" 0 2)")
check "late keys after the TTL: 400" 400 "$(http_code "$r")"
# 3 early + 15 more + 2 late at B (sae-b); the sae-x -> sae-a pair's 2 at A
check "B: expired keys counted (3 + 15 + 2)" 20 "$(metric "$KME_B_OPS" "$EXPIRED")"
check "B: nothing waiting" 0 "$(metric "$KME_B_OPS" "$WAITING")"
check "sqlite3: no assigned row left in kme-b.db" 0 "$(akeys)"
check "A: the other pair's 2 keys expired there" 2 "$(metric "$KME_A_OPS" "$EXPIRED")"
check_match "B logged the wipe" 'not fetched within key_ttl_s 3 s: wiped' "$(cat "$TB/kme-b.log")"
check "the early keys took more than the TTL to expire" true \
	"$([ $(( ($(date +%s%N) - t_early) / 1000000 )) -ge 3000 ] && echo true || echo false)"

# --- fresh keys work as before ---
r=$(enc A "$KME_A_URL" sae-b '{"number":20}')
check "after expiry the pair has room for 20: 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
dec_same "those 20: bytes equal at B" B "$KME_B_URL" sae-a "$c"
no_crash
