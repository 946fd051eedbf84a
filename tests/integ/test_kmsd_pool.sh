#!/bin/sh
# kmsd's key pool: levels between the watermarks in /healthz and /metrics,
# refill after draining below low, pool hit/miss counters, and the KME going
# away (pool served until empty, then 503 naming the KME, /healthz degraded
# then down) and coming back (kmsd reconnects and refills by itself).
. "$(dirname "$0")/lib.sh"
POOL_LOW=50; POOL_HIGH=200; export POOL_LOW POOL_HIGH
tb_up

metric() { curl -s "$1/metrics" | awk -v m="$2" '$1 == m { print $2; exit }'; }
HIT='kmsd_pool_requests_total{result="hit"}'
MISS='kmsd_pool_requests_total{result="miss"}'
GAUGE='kmsd_pool_keys{master="sae-a",slave="sae-b"}'
healthz() { curl -s -w '\n%{http_code}' "$KMSD_A_OPS/healthz"; }
poolkeys() { curl -s "$KMSD_A_OPS/healthz" | jq -r '.pools[] | select(.master == "sae-a" and .slave == "sae-b") | .keys'; }
# wait_pool OP N SECONDS: poll until the pool's key count OP (-ge, -eq, ...) N.
wait_pool() {
	i=0
	while [ $i -lt $(($3 * 10)) ]; do
		[ "$(poolkeys)" "$1" "$2" ] 2>/dev/null && return 0
		sleep 0.1; i=$((i + 1))
	done
	return 1
}

# --- levels ---
wait_pool -ge "$POOL_LOW" 10
r=$(healthz)
check "/healthz: 200" 200 "$(http_code "$r")"
h=$(http_body "$r")
check "/healthz: id, upstream, status" "kmsd-a/reachable/ok" "$(json_get "$h" '"\(.id)/\(.upstream)/\(.status)"')"
check "/healthz: one pool sae-a -> sae-b with watermarks 50/200" "1 sae-a sae-b 50 200" \
	"$(json_get "$h" '"\(.pools | length) \(.pools[0].master) \(.pools[0].slave) \(.pools[0].low) \(.pools[0].high)"')"
k=$(json_get "$h" '.pools[0].keys')
check "/healthz: pool between the watermarks ($k)" true "$(yes_no [ "$k" -ge 50 ] && [ "$k" -le 200 ])"
check "/metrics: kmsd_pool_keys = /healthz keys" "$k" "$(metric "$KMSD_A_OPS" "$GAUGE")"
check "/metrics: low watermark" 50 "$(metric "$KMSD_A_OPS" 'kmsd_pool_low_watermark{master="sae-a",slave="sae-b"}')"
check "/metrics: high watermark" 200 "$(metric "$KMSD_A_OPS" 'kmsd_pool_high_watermark{master="sae-a",slave="sae-b"}')"
check "/metrics: kmsd_upstream_up 1" 1 "$(metric "$KMSD_A_OPS" kmsd_upstream_up)"

# --- hits: 13 x 256 from the pool ---
h0=$(metric "$KMSD_A_OPS" "$HIT"); m0=$(metric "$KMSD_A_OPS" "$MISS")
all=""
for i in 1 2 3; do
	r=$(enc A "$KMSD_A_URL" sae-b '{"number":13}')
	[ "$(http_code "$r")" = 200 ] && all="$all$(pairs "$(http_body "$r")")
"
done
check "3 pooled enc_keys: 3 pool hits" 3 "$(($(metric "$KMSD_A_OPS" "$HIT") - h0))"
check "3 pooled enc_keys: no miss" 0 "$(($(metric "$KMSD_A_OPS" "$MISS") - m0))"
check "3 pooled enc_keys: pool down by 39" $((POOL_HIGH - 39)) "$(poolkeys)"
check "39 distinct keys served" 39 "$(printf '%s' "$all" | grep -c .)"

# --- drain below low, watch it come back ---
# With the KME stopped the refill cannot race the drain (it reacts within
# milliseconds); the pool alone serves, then refills once the KME is back.
sh "$top/tests/testbed.sh" stop a "$TB"
n=0
while [ "$(poolkeys)" -ge "$POOL_LOW" ] && [ $n -lt 30 ]; do
	r=$(enc A "$KMSD_A_URL" sae-b '{"number":13}')
	[ "$(http_code "$r")" = 200 ] && all="$all$(pairs "$(http_body "$r")")
"
	n=$((n + 1))
done
check "drained below low ($POOL_LOW) with pooled enc_keys" true "$(yes_no [ "$n" -lt 30 ])"
sh "$top/tests/testbed.sh" start a "$TB"
wait_pool -eq "$POOL_HIGH" 15
check "refilled back to high ($POOL_HIGH) by itself" "$POOL_HIGH" "$(poolkeys)"
check "/healthz after the refill: ok, 200" "ok/200" "$(r=$(healthz); json_get "$(http_body "$r")" .status)/$(http_code "$r")"

# --- a request bigger than the pool: a miss, served by the KME ---
m0=$(metric "$KMSD_A_OPS" "$MISS")
r=$(enc A "$KMSD_A_URL" sae-b '{"number":300}')
check "enc_keys 300 x 256 (more than the pool holds): 200" 200 "$(http_code "$r")"
check "300 keys" 300 "$(json_get "$(http_body "$r")" '[.keys[].key_ID] | unique | length')"
check "... counted as a pool miss" 1 "$(($(metric "$KMSD_A_OPS" "$MISS") - m0))"
all="$all$(pairs "$(http_body "$r")")
"

# Everything served so far is at B, identical, once.
printf '%s' "$all" | grep . | sort >"$TB/served"
check "no key ID served twice so far" "" "$(cut -d' ' -f1 "$TB/served" | uniq -d | head -n 3)"
: >"$TB/atb"
split -l 100 "$TB/served" "$TB/chunk."
for f in "$TB"/chunk.*; do
	r=$(dec B "$KMSD_B_URL" sae-a "$(cut -d' ' -f1 "$f" | jq -R '{key_ID: .}' | jq -sc '{key_IDs: .}')")
	pairs "$(http_body "$r")" >>"$TB/atb"
done
same "all $(grep -c . "$TB/served") keys served at A are identical at B" "$(cat "$TB/served")" "$(sort "$TB/atb")"

# --- the KME goes away ---
wait_pool -eq "$POOL_HIGH" 10
p=$(poolkeys)
check "pool full before the KME goes ($p)" "$POOL_HIGH" "$p"
sh "$top/tests/testbed.sh" kill a "$TB"
served=0; code=200; all=""
while [ "$code" = 200 ] && [ $served -lt 40 ]; do
	r=$(enc A "$KMSD_A_URL" sae-b '{"number":13}')
	code=$(http_code "$r")
	if [ "$code" = 200 ]; then
		served=$((served + 1)); all="$all$(pairs "$(http_body "$r")")
"
	fi
done
check "KME A down: pooled enc_keys served from the pool until it runs short ($((p / 13)) x 13)" \
	$((p / 13)) "$served"
check "KME A down, pool short: 503" 503 "$code"
msg=$(json_get "$(http_body "$r")" .message)
check_match "the 503 says the KME is the problem" 'KME' "$msg"
check "the 503 has no keys" null "$(json_get "$(http_body "$r")" .keys)"
r=$(healthz); h=$(http_body "$r")
left=$(json_get "$h" '.pools[0].keys')
check "/healthz with the KME down and $((p % 13)) keys left: degraded, 200" \
	"unreachable/degraded/$((p % 13))/200" "$(json_get "$h" '"\(.upstream)/\(.status)/\(.pools[0].keys)"')/$(http_code "$r")"
check "/metrics: kmsd_upstream_up 0" 0 "$(metric "$KMSD_A_OPS" kmsd_upstream_up)"
i=0
while [ $i -lt "${left:-0}" ] && [ $i -lt 13 ]; do
	r=$(enc A "$KMSD_A_URL" sae-b '{"number":1}')
	[ "$(http_code "$r")" = 200 ] && all="$all$(pairs "$(http_body "$r")")
"
	i=$((i + 1))
done
check "the last $left keys served one by one" "$left" "$(printf '%s' "$all" | grep -c . | awk -v s="$served" '{ print $1 - s * 13 }')"
r=$(enc A "$KMSD_A_URL" sae-b '{"number":1}')
check "pool empty, KME down: enc_keys 1 -> 503" 503 "$(http_code "$r")"
check_match "... naming the KME" 'KME' "$(json_get "$(http_body "$r")" .message)"
r=$(enc A "$KMSD_A_URL" sae-b '{"number":2,"size":512}')
check "KME down: a non-pooled size -> 503" 503 "$(http_code "$r")"
r=$(healthz)
check "/healthz with the KME down and the pool empty: down, 503" "unreachable/down/0/503" \
	"$(json_get "$(http_body "$r")" '"\(.upstream)/\(.status)/\(.pools[0].keys)"')/$(http_code "$r")"
check "kmsd A still running with its KME down" true "$(yes_no kill -0 "$(cat "$TB/kmsd-a.pid")")"

# Keys served during the outage: at B, identical (KME B was up all along).
printf '%s' "$all" | grep . | sort >"$TB/served2"
r=$(dec B "$KMSD_B_URL" sae-a "$(cut -d' ' -f1 "$TB/served2" | jq -R '{key_ID: .}' | jq -sc '{key_IDs: .}')")
same "the $(grep -c . "$TB/served2") keys served during the outage are identical at B" \
	"$(cat "$TB/served2")" "$(pairs "$(http_body "$r")")"

# --- the KME comes back: kmsd reconnects and refills by itself ---
sh "$top/tests/testbed.sh" start a "$TB"
t0=$(date +%s)
i=0
until [ "$(curl -s "$KMSD_A_OPS/healthz" | jq -r '"\(.upstream)/\(.status)"')" = reachable/ok ] &&
    [ "$(poolkeys)" -ge "$POOL_LOW" ]; do
	i=$((i + 1)); [ $i -lt 100 ] || break; sleep 0.1
done
check "KME A back: /healthz reachable/ok and the pool refilled within 10 s ($(($(date +%s) - t0)) s)" \
	true "$(yes_no [ $i -lt 100 ])"
r=$(healthz)
check "/healthz: 200" 200 "$(http_code "$r")"
h0=$(metric "$KMSD_A_OPS" "$HIT")
r=$(enc A "$KMSD_A_URL" sae-b '{"number":13}')
check "KME A back: pooled enc_keys: 200" 200 "$(http_code "$r")"
check "... a pool hit" 1 "$(($(metric "$KMSD_A_OPS" "$HIT") - h0))"
c=$(http_body "$r")
dec_same "KME A back: the 13 keys identical at B" B "$KMSD_B_URL" sae-a "$c"
r=$(enc A "$KMSD_A_URL" sae-b '{"number":3,"size":512}')
check "KME A back: non-pooled enc_keys: 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
dec_same "KME A back: the 512-bit keys identical at B" B "$KMSD_B_URL" sae-a "$c"
check "/metrics: kmsd_upstream_up 1 again" 1 "$(metric "$KMSD_A_OPS" kmsd_upstream_up)"

kmsd_alive
kmsd_down_clean
