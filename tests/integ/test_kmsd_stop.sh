#!/bin/sh
# kmsd graceful stop loses no key: under 4 concurrent clients taking 13
# pooled keys per enc_keys, kmsd A gets SIGTERM three times and is restarted
# on the same pool. Afterwards: no key ID was served twice, every key served
# is fetchable at B with the same bytes, and the keys KME A delivered to
# kmsd A (counted in KME A's own log) are exactly the keys the clients got
# plus the keys left in the pool (sqlite3 on the pool's `keys` view): the
# leases kmsd held in memory at each stop were put back, none lost.
. "$(dirname "$0")/lib.sh"
KEY_RATE=4000000; POOL_LOW=1000; POOL_HIGH=3000; LOG_LEVEL=debug
export KEY_RATE POOL_LOW POOL_HIGH LOG_LEVEL
command -v sqlite3 >/dev/null 2>&1 || { nok "sqlite3 is not installed (mk/deps.sh installs it)"; exit 1; }
tb_up

W=$TB/stop; mkdir -p "$W"
ENC=$KMSD_A_URL/api/v1/keys/sae-b/enc_keys
pool_wait_low

for c in 1 2 3 4; do enc_client $c & done
for t in 1.5 0.7 1.1; do
	sleep "$t"
	sh "$top/tests/testbed.sh" stop kmsd-a "$TB"
	sleep 0.2
	if sh "$top/tests/testbed.sh" start kmsd-a "$TB" >>"$W/restart.log" 2>&1; then
		ok "kmsd A restarted after SIGTERM under load ($t s)"
	else
		nok "kmsd A did not restart after SIGTERM: $(tail -n 3 "$W/restart.log")"
	fi
done
sleep 1
touch "$W/stop"
wait
sh "$top/tests/testbed.sh" stop kmsd-a "$TB"

served_pairs "$W"/client.*.json >"$W/served"
n=$(grep -c . "$W/served")
echo "# $n keys served at A"
check "many keys served at A across the stops ($n > 1000)" true "$(yes_no [ "$n" -gt 1000 ])"
check "no key ID served twice" "$n" "$(cut -d' ' -f1 "$W/served" | sort -u | grep -c .)"
put=$(grep -h 'leased keys put back' "$TB/kmsd-a.log" | sed 's/.*pool: \([0-9]*\) leased.*/\1/' | awk '{ s += $1 } END { print s + 0 }')
echo "# leased keys put back at the stops: ${put:-0}"
check "each stop put its leased keys back (4 stops, keys > 0)" true \
	"$(yes_no [ "$(grep -c 'leased keys put back' "$TB/kmsd-a.log")" -eq 4 ] && [ "${put:-0}" -gt 0 ])"
check "no leased key dropped at a stop" "" "$(grep 'could not be put back' "$TB/kmsd-a.log")"

# Accounting at the key server: what KME A delivered to sae-a for sae-b.
kme=$(sed -n 's/.*enc_keys sae-a -> sae-b: \([0-9]*\) x [0-9]* bits delivered.*/\1/p' "$TB/kme-a.log" | awk '{ s += $1 } END { print s + 0 }')
sqlite3 -readonly "$TB/kmsd-a.db" 'SELECT key_id FROM keys' 2>"$W/sqlite.err" | sort >"$W/inpool"
p=$(grep -c . "$W/inpool")
echo "# KME A delivered $kme keys; served $n; in the pool $p"
check "KME A's keys = served + in the pool (nothing lost): $kme = $n + $p" "$kme" "$((n + p))"
check "no served key is still in the pool" "" "$(cut -d' ' -f1 "$W/served" | comm -12 - "$W/inpool" | head -n 3)"

errs=$(fetch_at_b "$W/served" "$W/atb")
check "dec_keys at B of every served key: no error answers" "" "$errs"
same "every key served at A is at B with the same bytes" "$(cat "$W/served")" "$(cat "$W/atb")"
# The pool's keys (a sample) are fetchable at B too: they were not lost.
head -n 300 "$W/inpool" >"$W/pool.sample"
errs=$(fetch_at_b "$W/pool.sample" "$W/poolatb")
check "300 pooled keys fetchable at B: no error answers" "" "$errs"
check "300 pooled keys fetchable at B" 300 "$(grep -c . "$W/poolatb")"

sh "$top/tests/testbed.sh" start kmsd-a "$TB" >/dev/null 2>&1
r=$(enc A "$KMSD_A_URL" sae-b '{"number":13}')
check "after the stops: enc_keys 200" 200 "$(http_code "$r")"
check "after the stops: the 13 keys are new" "" \
	"$(http_body "$r" | jq -r '.keys[].key_ID' | sort | join - "$W/served" | head -n 3)"
kmsd_down_clean
