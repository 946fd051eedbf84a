#!/bin/sh
# Two kmsd (P1, P2) on one PostgreSQL pool for site A, under load from
# clients of both (2 each, 13 keys per enc_keys); one of them is killed with
# SIGKILL at different moments and restarted, six times, alternating.
# Afterwards: no key ID was served twice (across both instances), and every
# key served by either is retrievable at B (through kmsd B) with identical
# bytes; the pool's rows hold no key in clear (pg_dump scanned).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/pg_lib.sh"
KEY_RATE=4000000; POOL_LOW=1000; POOL_HIGH=3000; export KEY_RATE POOL_LOW POOL_HIGH
pgk_site_up
W=$TB/crash; mkdir -p "$W"
metric() { curl -s "$1/metrics" | awk -v m="$2" '$1 == m { print $2; exit }'; }
HIT='kmsd_pool_requests_total{result="hit"}'

hits=0
# crash N DELAY: let the load run DELAY seconds, SIGKILL kmsd PN, restart it.
crash() {
	sleep "$2"
	eval "ops=\$P$1_OPS"
	h=$(metric "$ops" "$HIT")
	hits=$((hits + ${h:-0}))
	pgk_signal "$1" KILL
	sleep 0.2
	if pgk_start "$1"; then
		ok "kmsd P$1 restarted after SIGKILL under load ($3)"
	else
		nok "kmsd P$1 did not restart after SIGKILL ($3): $(tail -n 3 "$TB/kmsd-p$1.log")"
	fi
}

pgk_load_start
crash 1 1.5 "P1, 1.5 s into the load"
crash 2 0.3 "P2, 0.3 s later"
crash 1 1.1 "P1, 1.1 s later"
crash 2 0.05 "P2, at once"
crash 1 0.05 "P1, at once"
crash 2 0.8 "P2, 0.8 s later"
sleep 1.5
for i in 1 2; do
	eval "ops=\$P${i}_OPS"
	h=$(metric "$ops" "$HIT"); hits=$((hits + ${h:-0}))
done
pgk_load_stop

served_pairs "$W"/client.p1.*.json >"$W/served.p1"
served_pairs "$W"/client.p2.*.json >"$W/served.p2"
sort "$W/served.p1" "$W/served.p2" >"$W/served"
n=$(grep -c . "$W/served")
n1=$(grep -c . "$W/served.p1"); n2=$(grep -c . "$W/served.p2")
echo "# $n keys served ($n1 by P1, $n2 by P2); $hits pool hits"
check "many keys served by P1 across the crashes ($n1 > 1000)" true "$(yes_no [ "$n1" -gt 1000 ])"
check "many keys served by P2 across the crashes ($n2 > 1000)" true "$(yes_no [ "$n2" -gt 1000 ])"
check "most keys came from the pool ($hits pool hits x 13 > $n / 2)" true "$(yes_no [ $((hits * 26)) -gt "$n" ])"
check "no key ID served twice, by one instance or both" "" "$(cut -d' ' -f1 "$W/served" | uniq -d | head -n 5 | tr '\n' ' ')"
check "no key ID served twice, even with other bytes" "$n" "$(cut -d' ' -f1 "$W/served" | sort -u | grep -c .)"

at_b_same "$W/served" "by P1 or P2"

# Both work normally after all that, and serve new keys.
for i in 1 2; do
	eval "url=\$P${i}_URL"
	r=$(sae_curl A -X POST -H "$JSON" -d '{"number":13}' "$url/api/v1/keys/sae-b/enc_keys")
	check "after the crashes: P$i enc_keys 200" 200 "$(http_code "$r")"
	check "after the crashes: P$i's 13 keys are new" "" \
		"$(http_body "$r" | jq -r '.keys[].key_ID' | sort | join - "$W/served" | head -n 3)"
done

# --- the shared pool: nothing served is left in it, nothing in clear ---
pg_sql "SELECT key_id FROM keys" | sort >"$W/inpool"
check "the pool still holds keys ($(grep -c . "$W/inpool"))" true \
	"$(yes_no [ "$(grep -c . "$W/inpool")" -gt 0 ])"
check "no key ID served is still in the pool" "" \
	"$(cut -d' ' -f1 "$W/served" | comm -12 - "$W/inpool" | head -n 3 | tr '\n' ' ')"
check "one refill lease row for the pair" 1 "$(pg_sql "SELECT count(*) FROM refill")"
head -n 100 "$W/inpool" | jq -R '{key_ID: .}' | jq -sc '{key_IDs: .}' >"$W/pool.body"
r=$(sae_curl B -X POST -H "$JSON" --data-binary @"$W/pool.body" "$KMSD_B_URL/api/v1/keys/sae-a/dec_keys")
check "100 pooled keys fetched at B: 200" 200 "$(http_code "$r")"
http_body "$r" | jq -r '.keys[] | "\(.key_ID) \(.key)"' >"$W/pooled"
pg_dump -d "$PG_CONNINFO" -F p -f "$W/dump.sql" 2>"$W/dump.err"
pg_dump -d "$PG_CONNINFO" -F c -f "$W/dump.bin" 2>>"$W/dump.err"
check "pg_dump of the pool" "" "$(cat "$W/dump.err")"
check "pooled keys: none in clear in a pg_dump (text and custom format)" 0 \
	"$(pg_in_clear "$W/pooled" "$W/dump.sql" "$W/dump.bin")"
check "served keys: none in clear in a pg_dump" 0 \
	"$(pg_in_clear "$W/served" "$W/dump.sql" "$W/dump.bin")"
head -n 1 "$W/pooled" | cut -d' ' -f2 | base64 -d >"$W/control"
check "control: the clear-text search finds a planted key" 1 "$(pg_in_clear "$W/pooled" "$W/control")"
check "kek file still mode 600" 600 "$(stat -c %a "$TB/kmsd-a.kek")"
for i in 1 2; do
	check "kmsd P$i still running" true "$(yes_no kill -0 "$(cat "$TB/kmsd-p$i.pid")")"
done
check "no row dropped as corrupt (every leased row opened, also other instances' epochs)" "" \
	"$(grep -h 'does not authenticate' "$TB"/kmsd-p*.log | head -n 3)"
pgk_signal 1 TERM; pgk_signal 2 TERM
kmsd_down_clean
