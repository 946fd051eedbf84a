#!/bin/sh
# qkd-sim multicast (additional_slave_SAE_IDs): every named slave gets the
# same bytes once, nobody else gets them, limits and unknown slaves refused.
. "$(dirname "$0")/lib.sh"
NO_KMSD=1; export NO_KMSD	# the KMEs alone: no kmsd pool drawing keys
tb_up

r=$(enc A "$KME_A_URL" sae-b '{"number":5,"size":256,"additional_slave_SAE_IDs":["sae-x"]}')
check "enc_keys sae-b + additional sae-x: 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
check "multicast: 5 keys" 5 "$(json_get "$c" '.keys | length')"

dec_same "multicast: sae-b gets A's bytes" B "$KME_B_URL" sae-a "$c" "multicast: sae-b dec_keys: 200"
r=$(dec B "$KME_B_URL" sae-a "$(idsbody "$c")")
check "multicast: sae-b a second time: 400" 400 "$(http_code "$r")"
check "multicast: sae-b a second time: message" "$NOTFOUND" "$(json_get "$(http_body "$r")" .message)"

dec_same "multicast: sae-x gets the same bytes" X "$KME_B_URL" sae-a "$c" "multicast: sae-x dec_keys after sae-b took them: 200"
r=$(dec X "$KME_B_URL" sae-a "$(idsbody "$c")")
check "multicast: sae-x a second time: 400" 400 "$(http_code "$r")"

# Order the other way round, with the GET forms, and a part of the keys.
r=$(enc A "$KME_A_URL" sae-b '{"number":3,"size":128,"additional_slave_SAE_IDs":["sae-x"]}')
c=$(http_body "$r")
id0=$(json_get "$c" '.keys[0].key_ID')
r=$(sae_curl X "$KME_B_URL/api/v1/keys/sae-a/dec_keys?key_ID=$id0")
check "multicast: sae-x first, GET form: 200" 200 "$(http_code "$r")"
check "multicast: sae-x GET: bytes" "$(json_get "$c" '.keys[0].key')" "$(json_get "$(http_body "$r")" '.keys[0].key')"
r=$(sae_curl X "$KME_B_URL/api/v1/keys/sae-a/dec_keys?key_ID=$id0")
check "multicast: sae-x GET again: 400" 400 "$(http_code "$r")"
dec_same "multicast: sae-b bytes" B "$KME_B_URL" sae-a "$c" "multicast: sae-b all 3 after sae-x took one: 200"
# sae-x still has the other two, all or nothing: with id0 (gone) -> 400, keys kept
r=$(dec X "$KME_B_URL" sae-a "$(idsbody "$c")")
check "multicast: sae-x asks for all 3 incl. the one it had: 400" 400 "$(http_code "$r")"
rest=$(printf '%s' "$c" | jq -c '{keys: .keys[1:]}')
dec_same "multicast: sae-x the other 2: bytes" X "$KME_B_URL" sae-a "$rest" "multicast: sae-x the other 2: 200"

# Without the additional slave, sae-x has no access.
r=$(enc A "$KME_A_URL" sae-b '{"number":2}')
c=$(http_body "$r")
r=$(dec X "$KME_B_URL" sae-a "$(idsbody "$c")")
check "unicast to sae-b: sae-x refused: 401" 401 "$(http_code "$r")"
dec_same "unicast to sae-b: sae-b still gets them" B "$KME_B_URL" sae-a "$c"

# Multicast from B: sae-x master, sae-a slave; sae-b additional slave
# would be at B itself (not the peer) -> refused.
r=$(enc X "$KME_B_URL" sae-a '{"number":1,"additional_slave_SAE_IDs":["sae-b"]}')
check "multicast with an additional slave at the master's own KME: 400" 400 "$(http_code "$r")"

# Limits
eight='"s1","s2","s3","s4","s5","s6","s7","s8"'
nine="$eight,\"s9\""
r=$(enc A "$KME_A_URL" sae-b "{\"additional_slave_SAE_IDs\":[$nine]}")
check "9 additional slaves (> max_SAE_ID_count 8): 400" 400 "$(http_code "$r")"
check_match "9 additional slaves: message says why" 'max_SAE_ID_count|additional' \
	"$(json_get "$(http_body "$r")" .message)"
r=$(enc A "$KME_A_URL" sae-b "{\"additional_slave_SAE_IDs\":[$eight]}")
check "8 unknown additional slaves: 400 (not attached)" 400 "$(http_code "$r")"
r=$(enc A "$KME_A_URL" sae-b '{"additional_slave_SAE_IDs":["sae-x","nobody"]}')
check "additional slave nobody: 400" 400 "$(http_code "$r")"
check_match "additional slave nobody: the error names it" 'nobody' \
	"$(json_get "$(http_body "$r")" '[.message, (.details // [] | tostring)] | join(" ")')"

# A refused multicast consumed nothing and the pair still works.
r=$(enc A "$KME_A_URL" sae-b '{"number":2,"additional_slave_SAE_IDs":["sae-x"]}')
check "multicast after the refusals: 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
r1=$(dec X "$KME_B_URL" sae-a "$(idsbody "$c")")
r2=$(dec B "$KME_B_URL" sae-a "$(idsbody "$c")")
same "multicast after the refusals: sae-x bytes" "$(pairs "$c")" "$(pairs "$(http_body "$r1")")"
same "multicast after the refusals: sae-b bytes" "$(pairs "$c")" "$(pairs "$(http_body "$r2")")"

# Racing slaves: 20 multicast containers, two sae-b and two sae-x clients
# each ask for every container: per slave, each container exactly once.
W=$TB/race; mkdir -p "$W"
i=0
while [ $i -lt 20 ]; do
	r=$(enc A "$KME_A_URL" sae-b '{"number":3,"additional_slave_SAE_IDs":["sae-x"]}')
	http_body "$r" >"$W/c$i.json"
	pairs "$(http_body "$r")" >>"$W/all"
	i=$((i + 1))
done
sort -o "$W/all" "$W/all"
racer() {	# WHO OUT
	for f in "$W"/c*.json; do
		r=$(dec "$1" "$KME_B_URL" sae-a "$(idsbody "$(cat "$f")")")
		http_code "$r" >>"$2.codes"; echo >>"$2.codes"
		[ "$(http_code "$r")" = 200 ] && pairs "$(http_body "$r")" >>"$2.keys"
	done
	: >>"$2.keys"
}
racer B "$W/b1" & racer B "$W/b2" & racer X "$W/x1" & racer X "$W/x2" &
wait
check "racing sae-b clients: 20 containers delivered once each" 20 "$(cat "$W"/b?.codes | grep -c '^200$')"
check "racing sae-x clients: 20 containers delivered once each" 20 "$(cat "$W"/x?.codes | grep -c '^200$')"
check "racing slaves: every other answer 400" "" "$(cat "$W"/[bx]?.codes | grep -vxE '200|400' | sort -u | tr '\n' ' ')"
same "racing sae-b: all keys, A's bytes" "$(cat "$W/all")" "$(sort "$W"/b?.keys)"
same "racing sae-x: all keys, A's bytes" "$(cat "$W/all")" "$(sort "$W"/x?.keys)"

no_crash
