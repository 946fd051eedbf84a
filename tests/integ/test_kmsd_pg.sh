#!/bin/sh
# Two kmsd (P1, P2) for site A on one PostgreSQL pool: the ETSI GS QKD 014
# essentials through both (status, enc_keys POST and GET with the same
# bytes at B, forwarded sizes, the spec's errors, the ACL), one refiller at
# a time; then PostgreSQL stopped under load from clients of both: pooled
# requests get 503 while it is down, both serve again by themselves after
# it restarts, and no key was served twice or lost (all identical at B).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg_lib.sh"
KEY_RATE=4000000; POOL_LOW=1000; POOL_HIGH=3000; export KEY_RATE POOL_LOW POOL_HIGH
pgk_site_up
W=$TB/pg; mkdir -p "$W"
DEC=$KMSD_B_URL/api/v1/keys/sae-a/dec_keys
metric() { curl -s "$1/metrics" | awk -v m="$2" '$1 == m { print $2; exit }'; }
HIT='kmsd_pool_requests_total{result="hit"}'

# --- the ETSI 014 essentials through each instance ---
for i in 1 2; do
	eval "url=\$P${i}_URL; ops=\$P${i}_OPS"
	r=$(sae_curl A "$url/api/v1/keys/sae-b/status")
	check "P$i status: 200" 200 "$(http_code "$r")"
	st=$(http_body "$r")
	check "P$i status: master/slave, KMEs" "sae-a/sae-b kme-a/kme-b" \
		"$(json_get "$st" '"\(.master_SAE_ID)/\(.slave_SAE_ID) \(.source_KME_ID)/\(.target_KME_ID)"')"
	check "P$i status: stored_key_count counts the shared pool (>= $POOL_LOW)" true \
		"$(yes_no [ "$(json_get "$st" .stored_key_count)" -ge "$POOL_LOW" ])"
	r=$(enc A "$url" sae-b '{"number":13,"size":256}')
	check "P$i enc_keys POST 13 x 256: 200" 200 "$(http_code "$r")"
	c=$(http_body "$r")
	check "P$i enc_keys: 13 distinct UUID key IDs" 13 \
		"$(printf '%s' "$c" | jq -r '.keys[].key_ID' | grep -E "$UUID_RE" | sort -u | grep -c .)"
	printf '%s' "$c" | jq -r '.keys[] | "\(.key_ID) \(.key)"' >>"$W/etsi.served"
	dec_same "P$i: the 13 keys byte-identical at B" B "$KMSD_B_URL" sae-a "$c" "P$i: dec_keys of the 13 at B: 200"
	is_err "P$i: second dec_keys of the same 13 IDs" 400 "$(dec B "$KMSD_B_URL" sae-a "$(idsbody "$c")")" "$NOTFOUND"
	r=$(sae_curl A "$url/api/v1/keys/sae-b/enc_keys?number=2")
	check "P$i enc_keys GET ?number=2: 200, 2 keys" 200/2 "$(http_code "$r")/$(json_get "$(http_body "$r")" '.keys | length')"
	c=$(http_body "$r"); id=$(json_get "$c" '.keys[0].key_ID')
	printf '%s' "$c" | jq -r '.keys[] | "\(.key_ID) \(.key)"' >>"$W/etsi.served"
	check "P$i: GET key, same bytes at B" "$(json_get "$c" '.keys[0].key')" \
		"$(json_get "$(http_body "$(sae_curl B "$DEC?key_ID=$id")")" '.keys[0].key')"
	r=$(enc A "$url" sae-b '{"number":5,"size":512}')
	check "P$i enc_keys 5 x 512 (not pooled: the KME): 200, 64-byte keys" 200/64 \
		"$(http_code "$r")/$(json_get "$(http_body "$r")" '.keys[0].key' | base64 -d | wc -c)"
	dec_same "P$i: the 512-bit keys identical at B" B "$KMSD_B_URL" sae-a "$(http_body "$r")" "P$i: dec_keys of the 512-bit keys: 200"
	is_err "P$i size 250" 400 "$(enc A "$url" sae-b '{"number":1,"size":250}')" "size shall be a multiple of 8"
	is_err "P$i number 0" 400 "$(enc A "$url" sae-b '{"number":0}')"
	is_err "P$i sae-a enc_keys for sae-z (not in its peers)" 401 "$(enc A "$url" sae-z '{"number":1}')"
	is_err "P$i sae-b (not a local SAE): enc_keys" 401 "$(enc B "$url" sae-a '{"number":1}')"
	check "P$i healthz: ok" ok "$(curl -s "$ops/healthz" | jq -r .status)"
	check "P$i served from the pool (hits > 0)" true "$(yes_no [ "$(metric "$ops" "$HIT")" -gt 0 ])"
done
check "ETSI: no key ID served twice across P1 and P2" "" \
	"$(cut -d' ' -f1 "$W/etsi.served" | sort | uniq -d | head -n 3 | tr '\n' ' ')"
check "one refiller: one refill lease row, held by P1 or P2" "1 yes" \
	"$(pg_sql "SELECT count(*), bool_and(owner LIKE 'kmsd-p%') FROM refill" | tr '|' ' ' | sed 's/ t$/ yes/')"

# --- PostgreSQL stopped under load ---
pgk_load_start
sleep 1.5
pg_stop
check "PostgreSQL stopped under load" false "$(yes_no pg_sql "SELECT 1" 2>/dev/null)"
sleep 1
codes=""; msg=""
for n in 1 2 3 4; do
	for i in 1 2; do
		eval "url=\$P${i}_URL"
		r=$(enc A "$url" sae-b '{"number":13}')
		codes="$codes$(http_code "$r") "
		msg=$(json_get "$(http_body "$r")" .message)
	done
	sleep 0.3
done
check "while PostgreSQL is down: pooled enc_keys at P1 and P2 get 503" \
	"503 503 503 503 503 503 503 503 " "$codes"
check "the 503 says why" "kmsd's key pool database is unreachable" "$msg"
sleep 1
pg_start || nok "PostgreSQL did not restart"
for i in 1 2; do
	eval "url=\$P${i}_URL"
	n=0
	while [ "$(http_code "$(enc A "$url" sae-b '{"number":13}')")" != 200 ] && [ $n -lt 150 ]; do
		sleep 0.1; n=$((n + 1))
	done
	check "P$i serves again by itself after PostgreSQL restarted ($((n / 10)) s)" true "$(yes_no [ $n -lt 150 ])"
done
sleep 1.5
pgk_load_stop
for i in 1 2; do
	check "P$i logged the outage and the reconnect" "1 1" \
		"$(echo "$(grep -c 'PostgreSQL unreachable' "$TB/kmsd-p$i.log") $(grep -c 'PostgreSQL reachable again' "$TB/kmsd-p$i.log")")"
done
served_pairs "$W"/client.*.json >"$W/served"
n=$(grep -c . "$W/served")
echo "# $n keys served around the outage"
check "keys served around the outage ($n > 1000)" true "$(yes_no [ "$n" -gt 1000 ])"
check "no key ID served twice around the outage" "" "$(cut -d' ' -f1 "$W/served" | uniq -d | head -n 5 | tr '\n' ' ')"
at_b_same "$W/served" "around the outage"
for i in 1 2; do
	check "kmsd P$i still running" true "$(yes_no kill -0 "$(cat "$TB/kmsd-p$i.pid")")"
done
pgk_signal 1 TERM; pgk_signal 2 TERM
check "a graceful stop puts the leases back in the shared pool" 2 \
	"$(grep -c 'leased keys put back into the pool database' "$TB"/kmsd-p*.log | awk -F: '{ s += ($2 > 0) } END { print s }')"
kmsd_down_clean
