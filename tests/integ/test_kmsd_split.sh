#!/bin/sh
# kmsd request splitting: the KMEs allow 4 keys per request; kmsd takes up
# to 1024, splits them upstream (enc_keys at A, dec_keys at B) and answers
# with one Key container. Counted through kmsd's /metrics.
. "$(dirname "$0")/lib.sh"
MAX_KEY_PER_REQUEST=4; export MAX_KEY_PER_REQUEST
POOL_LOW=50; POOL_HIGH=100; export POOL_LOW POOL_HIGH
tb_up

# metric OPS_URL SAMPLE: the value of one sample line of /metrics (e.g.
# 'kmsd_pool_requests_total{result="hit"}'); empty if absent.
metric() { curl -s "$1/metrics" | awk -v m="$2" '$1 == m { print $2; exit }'; }
UPENC='kmsd_upstream_requests_total{endpoint="enc_keys",result="ok"}'
UPDEC='kmsd_upstream_requests_total{endpoint="dec_keys",result="ok"}'
HIT='kmsd_pool_requests_total{result="hit"}'
# pool_quiet: the pool is at or above low and stands still (no refill running).
pool_quiet() {
	i=0
	while [ $i -lt 60 ]; do
		a=$(poolkeys); sleep 0.3; b=$(poolkeys)
		[ "${a:-0}" -ge "$POOL_LOW" ] 2>/dev/null && [ "$a" = "$b" ] && return 0
		i=$((i + 1))
	done
	return 1
}

r=$(enc KA "$KME_A_URL" sae-b '{"number":5,"size":512}')
check "the KME itself refuses 5 keys in one request (limit 4)" 400 "$(http_code "$r")"
r=$(sae_curl A "$KMSD_A_URL/api/v1/keys/sae-b/status")
check "kmsd A status: max_key_per_request is kmsd's 1024, not the KME's 4" 1024 \
	"$(json_get "$(http_body "$r")" .max_key_per_request)"

pool_quiet; check "pool filled and quiet before counting" 0 $?
e0=$(metric "$KMSD_A_OPS" "$UPENC"); d0=$(metric "$KMSD_B_OPS" "$UPDEC")
r=$(enc A "$KMSD_A_URL" sae-b '{"number":13,"size":512}')
check "enc_keys 13 x 512 at kmsd A (KME limit 4): 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
check "one container with 13 keys" 13 "$(json_get "$c" '.keys | length')"
check "13 distinct key IDs" 13 "$(json_get "$c" '[.keys[].key_ID] | unique | length')"
check "every key 64 bytes" 13 "$(printf '%s' "$c" | jq -r '.keys[].key' | while read -r k; do printf '%s' "$k" | base64 -d | wc -c; done | grep -cx 64)"
e1=$(metric "$KMSD_A_OPS" "$UPENC")
check "split into 4 upstream enc_keys calls (13 = 4+4+4+1)" 4 "$((${e1:-0} - ${e0:-0}))"
r=$(dec B "$KMSD_B_URL" sae-a "$(idsbody "$c")")
check "dec_keys of the 13 at kmsd B: 200" 200 "$(http_code "$r")"
check "dec_keys: one container with 13 keys" 13 "$(json_get "$(http_body "$r")" '.keys | length')"
same "the 13 keys byte-identical at B" "$(pairs "$c")" "$(pairs "$(http_body "$r")")"
d1=$(metric "$KMSD_B_OPS" "$UPDEC")
check "dec_keys split into 4 upstream calls at kmsd B" 4 "$((${d1:-0} - ${d0:-0}))"

# A larger one: 101 keys, 26 calls each way.
pool_quiet
e0=$(metric "$KMSD_A_OPS" "$UPENC"); d0=$(metric "$KMSD_B_OPS" "$UPDEC")
r=$(enc A "$KMSD_A_URL" sae-b '{"number":101,"size":512}')
check "enc_keys 101 x 512: 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
check "101 distinct keys in one container" 101 "$(json_get "$c" '[.keys[].key_ID] | unique | length')"
e1=$(metric "$KMSD_A_OPS" "$UPENC")
check "101 keys: 26 upstream enc_keys calls" 26 "$((${e1:-0} - ${e0:-0}))"
dec_same "the 101 keys byte-identical at B" B "$KMSD_B_URL" sae-a "$c" "dec_keys of the 101 at kmsd B: 200"
d1=$(metric "$KMSD_B_OPS" "$UPDEC")
check "101 keys: 26 upstream dec_keys calls at kmsd B" 26 "$((${d1:-0} - ${d0:-0}))"

# Multicast through the split.
r=$(enc A "$KMSD_A_URL" sae-b '{"number":9,"size":512,"additional_slave_SAE_IDs":["sae-x"]}')
check "enc_keys 9 x 512 with additional slave sae-x: 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
dec_same "multicast split: sae-x gets the 9 identical keys" X "$KMSD_B_URL" sae-a "$c"
dec_same "multicast split: sae-b gets the 9 identical keys" B "$KMSD_B_URL" sae-a "$c"

# The pooled path: 13 x 256 from the pool, no upstream call.
pool_quiet
p0=$(poolkeys); h0=$(metric "$KMSD_A_OPS" "$HIT"); e0=$(metric "$KMSD_A_OPS" "$UPENC")
r=$(enc A "$KMSD_A_URL" sae-b '{"number":13,"size":256}')
check "enc_keys 13 x 256 (pooled): 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
check "pooled: 13 keys" 13 "$(json_get "$c" '[.keys[].key_ID] | unique | length')"
check "pooled: a pool hit" 1 "$(($(metric "$KMSD_A_OPS" "$HIT") - ${h0:-0}))"
check "pooled: no upstream enc_keys call" 0 "$(($(metric "$KMSD_A_OPS" "$UPENC") - ${e0:-0}))"
check "pooled: the pool shrank by 13" "$((p0 - 13))" "$(poolkeys)"
dec_same "pooled: the 13 keys byte-identical at B" B "$KMSD_B_URL" sae-a "$c" "pooled: dec_keys of the 13 at kmsd B: 200"

# Drain below low: the refill (in requests of 4) brings it back.
for i in 1 2 3 4; do enc A "$KMSD_A_URL" sae-b '{"number":13}' >/dev/null; done
i=0
while [ "$(poolkeys)" -lt "$POOL_LOW" ] 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "pool refilled through 4-key requests: >= low" true "$([ "$(poolkeys)" -ge "$POOL_LOW" ] && echo true || echo false)"

kmsd_alive
kmsd_down_clean
