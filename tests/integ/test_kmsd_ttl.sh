#!/bin/sh
# kmsd pool TTL (ttl_s = 2): pooled keys older than the TTL are dropped, never
# served, including the part of a lease already taken into memory. With
# KME A stopped (no refill) the pool runs dry by age alone: /healthz and
# /metrics show 0, and enc_keys is a pool miss that goes to the (absent) KME:
# 503. With the KME back, fresh keys are served again.
. "$(dirname "$0")/lib.sh"
POOL_LOW=50; POOL_HIGH=200; POOL_TTL_S=2; export POOL_LOW POOL_HIGH POOL_TTL_S
tb_up

metric() { curl -s "$1/metrics" | awk -v m="$2" '$1 == m { print $2; exit }'; }
HIT='kmsd_pool_requests_total{result="hit"}'
MISS='kmsd_pool_requests_total{result="miss"}'
GAUGE='kmsd_pool_keys{master="sae-a",slave="sae-b"}'
poolkeys() { curl -s "$KMSD_A_OPS/healthz" | jq -r '.pools[] | select(.master == "sae-a" and .slave == "sae-b") | .keys'; }

i=0
while [ "$(poolkeys)" -lt "$POOL_LOW" ] 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "pool filled (>= low)" true "$(yes_no [ "$(poolkeys)" -ge "$POOL_LOW" ])"

# With the KME up the pool keeps being renewed: after several TTLs it still
# serves.
sleep 3
i=0
while [ "$(poolkeys)" -lt 13 ] 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
r=$(enc A "$KMSD_A_URL" sae-b '{"number":13}')
check "after 3 s (> TTL) with the KME up: pooled enc_keys 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
dec_same "those keys identical at B" B "$KMSD_B_URL" sae-a "$c"

# Wait for a refill to land (the count jumps up: keys just fetched, with
# almost the whole TTL ahead), take a key so that a lease sits in memory,
# then stop the KME.
prev=$(poolkeys); i=0
while [ $i -lt 100 ]; do
	cur=$(poolkeys)
	[ "${cur:-0}" -gt "${prev:-0}" ] 2>/dev/null && [ "$cur" -ge 100 ] && break
	prev=$cur; i=$((i + 1)); sleep 0.05
done
check "a refill landed (the pool jumped to $cur)" true "$(yes_no [ $i -lt 100 ])"
r=$(enc A "$KMSD_A_URL" sae-b '{"number":1}')
check "one more pooled key (a lease is in memory): 200" 200 "$(http_code "$r")"
sh "$top/tests/testbed.sh" kill a "$TB"
p=$(poolkeys)
check "right after KME A stops, the pool still has keys ($p)" true "$(yes_no [ "${p:-0}" -gt 13 ])"
h0=$(metric "$KMSD_A_OPS" "$HIT"); m0=$(metric "$KMSD_A_OPS" "$MISS")
# Every pooled key is now at least 3 s old: older than the TTL.
sleep 3
check "3 s later (TTL 2 s): /healthz pool keys 0" 0 "$(poolkeys)"
check "3 s later: /metrics kmsd_pool_keys 0" 0 "$(metric "$KMSD_A_OPS" "$GAUGE")"
r=$(enc A "$KMSD_A_URL" sae-b '{"number":13}')
check "expired keys are not served: enc_keys 13 -> 503 (KME down)" 503 "$(http_code "$r")"
check "... no keys in the answer" null "$(json_get "$(http_body "$r")" .keys)"
check_match "... the message names the KME" KME "$(json_get "$(http_body "$r")" .message)"
r=$(enc A "$KMSD_A_URL" sae-b '{"number":1}')
check "expired keys are not served: enc_keys 1 -> 503" 503 "$(http_code "$r")"
r=$(sae_curl A "$KMSD_A_URL/api/v1/keys/sae-b/enc_keys")
check "expired keys are not served: GET enc_keys -> 503" 503 "$(http_code "$r")"
check "3 pool misses, no hit" "3/0" \
	"$(($(metric "$KMSD_A_OPS" "$MISS") - m0))/$(($(metric "$KMSD_A_OPS" "$HIT") - h0))"
r=$(curl -s -w '\n%{http_code}' "$KMSD_A_OPS/healthz")
check "/healthz: down, 503 (KME away, pool empty by age)" "down/503" "$(json_get "$(http_body "$r")" .status)/$(http_code "$r")"

# The KME back: fresh keys.
sh "$top/tests/testbed.sh" start a "$TB"
i=0
while [ "$(poolkeys)" -lt "$POOL_LOW" ] 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "KME A back: the pool refills within 10 s" true "$(yes_no [ "$(poolkeys)" -ge "$POOL_LOW" ])"
r=$(enc A "$KMSD_A_URL" sae-b '{"number":13}')
check "KME A back: pooled enc_keys 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
dec_same "KME A back: the keys identical at B" B "$KMSD_B_URL" sae-a "$c"
check "the drop of expired keys is logged" true "$(yes_no grep -q 'expired' "$TB/kmsd-a.log")"

kmsd_alive
kmsd_down_clean
