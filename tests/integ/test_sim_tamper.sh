#!/bin/sh
# qkd-sim with SQLite stores: a row of kme-b.db edited with sqlite3 while
# the KME runs (which SAE may fetch a key, whether a slave took it, its
# creation time, its size, its sealed bytes) makes the key refused at B,
# to the SAE the edit names too; the refusal is logged and counted in
# /metrics, and an untouched key is still served.
. "$(dirname "$0")/lib.sh"
NO_KMSD=1; STATE_DIR=$TB/state; export NO_KMSD STATE_DIR
tb_up

metric() { curl -s --max-time 5 "$1/metrics" | awk -v m="$2" '$1 == m { print $2; exit }'; }
TAMPERED=qkdsim_keys_tampered_total
DB=$STATE_DIR/kme-b.db
# edit SET KEY_ID: UPDATE one assigned key's row in kme-b.db; prints rows changed
edit() {
	h=$(printf '%s' "$2" | tr -d '-')
	sqlite3 -cmd ".timeout 5000" "$DB" \
		"UPDATE akeys SET $1 WHERE id = x'$h'; SELECT changes();" 2>&1
}
kid() { printf '%s' "$1" | jq -r ".keys[$2].key_ID"; }
one() { printf '{"key_IDs":[{"key_ID":"%s"}]}' "$1"; }

check "sqlite3 is installed (mk/deps.sh)" 0 "$(command -v sqlite3 >/dev/null; echo $?)"
r=$(enc A "$KME_A_URL" sae-b '{"number":5}')
check "enc_keys 5 for sae-b: 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
r=$(enc A "$KME_A_URL" sae-b '{"number":1,"additional_slave_SAE_IDs":["sae-x"]}')
check "enc_keys 1 for sae-b and sae-x: 200" 200 "$(http_code "$r")"
m=$(http_body "$r")
r=$(dec B "$KME_B_URL" sae-a "$(one "$(kid "$m" 0)")")
check "sae-b takes its share of the shared key: 200" 200 "$(http_code "$r")"
check "nothing tampered yet" 0 "$(metric "$KME_B_OPS" "$TAMPERED")"

check "edit: the key for sae-b now names sae-x" 1 "$(edit "slaves = 'sae-x'" "$(kid "$c" 0)")"
check "edit: sae-b's taken flag reset" 1 "$(edit "taken = x'0000'" "$(kid "$m" 0)")"
check "edit: creation time a day later (longer TTL)" 1 "$(edit "t = t + 86400000" "$(kid "$c" 1)")"
check "edit: size" 1 "$(edit "size = 16" "$(kid "$c" 2)")"
check "edit: another key's sealed bytes" 1 \
	"$(edit "ct = (SELECT ct FROM akeys WHERE id = x'$(kid "$c" 4 | tr -d '-')')" "$(kid "$c" 3)")"

r=$(dec X "$KME_B_URL" sae-a "$(one "$(kid "$c" 0)")")
check "sae-x, named by the edit, asks: 400" 400 "$(http_code "$r")"
check "... and gets no key" null "$(json_get "$(http_body "$r")" .keys)"
r=$(dec B "$KME_B_URL" sae-a "$(one "$(kid "$c" 0)")")
check "sae-b, removed by the edit, asks: 401, no key" 401 "$(http_code "$r")"
r=$(dec B "$KME_B_URL" sae-a "$(one "$(kid "$m" 0)")")
check "sae-b asks again for the key it took (flag reset): 400" 400 "$(http_code "$r")"
r=$(dec B "$KME_B_URL" sae-a "$(one "$(kid "$c" 1)")")
check "key with an edited creation time: 400" 400 "$(http_code "$r")"
r=$(dec B "$KME_B_URL" sae-a "$(one "$(kid "$c" 2)")")
check "key with an edited size: 400" 400 "$(http_code "$r")"
r=$(dec B "$KME_B_URL" sae-a "$(one "$(kid "$c" 3)")")
check "key carrying another key's sealed bytes: 400" 400 "$(http_code "$r")"
check "5 refusals counted as tampered" 5 "$(metric "$KME_B_OPS" "$TAMPERED")"
check "B logged them" 5 "$(grep -c 'does not authenticate (its record was edited or damaged): refused' "$TB/kme-b.log")"

r=$(dec B "$KME_B_URL" sae-a "$(one "$(kid "$c" 4)")")
check "the untouched key: 200" 200 "$(http_code "$r")"
same "... with A's bytes" "$(printf '%s' "$c" | jq -c '.keys[4]')" "$(http_body "$r" | jq -c '.keys[0]')"
r=$(dec X "$KME_B_URL" sae-a "$(one "$(kid "$m" 0)")")
check "the shared key with a reset flag is refused to sae-x too: 400" 400 "$(http_code "$r")"
no_crash
