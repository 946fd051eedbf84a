#!/bin/sh
# kmsd's pool against a restored (older) copy of its database: a copy of the
# pool (database and -wal, taken after a checkpoint) is restored after kmsd
# A served keys from it and B fetched them; kmsd A, restarted on the old
# copy, refuses the rows it had leased (wiped, logged, counted in /metrics)
# and serves none of those keys again: every key it serves afterwards is
# new, and fetchable at B (KME B would refuse a key B already fetched).
# Accounting: every key of the copy was either refused, served once, or is
# still in the pool. Also: the high-water mark file is 0600, and a copy
# restored without it is refused whole.
. "$(dirname "$0")/lib.sh"
POOL_LOW=300; POOL_HIGH=600; POOL_LEASE=64; POOL_BATCH=50
export POOL_LOW POOL_HIGH POOL_LEASE POOL_BATCH
command -v sqlite3 >/dev/null 2>&1 || { nok "sqlite3 is not installed (mk/deps.sh installs it)"; exit 1; }
tb_up

W=$TB/rb; mkdir -p "$W"
DB=$TB/kmsd-a.db
metric() { curl -s "$KMSD_A_OPS/metrics" | awk -v m="$1" '$1 == m { print $2; exit }'; }
# serve N FILE: N enc_keys of 13 keys at kmsd A, answers appended to FILE.
serve() {
	for _ in $(seq "$1"); do
		curl -s --max-time 5 --cacert "$CA" --cert "$SAE_A_CERT" --key "$SAE_A_KEY" \
			-H "$JSON" --data-binary '{"number":13}' \
			"$KMSD_A_URL/api/v1/keys/sae-b/enc_keys" >>"$2"
	done
}
i=0
while [ "$(poolkeys)" -lt "$POOL_HIGH" ] 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "pool full before the copy ($POOL_HIGH keys)" "$POOL_HIGH" "$(poolkeys)"
check "high-water mark file exists, mode 600" 600 "$(stat -c %a "$DB.hwm" 2>&1)"

# The backup: a checkpoint, then the database and its -wal, while running.
sqlite3 "$DB" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
cp "$DB" "$W/copy.db"; cp "$DB-wal" "$W/copy.db-wal" 2>/dev/null || : >"$W/copy.db-wal"
sqlite3 -readonly "$W/copy.db" 'SELECT key_id FROM keys' | sort >"$W/copy.ids"
c=$(grep -c . "$W/copy.ids")
check "the copy holds pooled keys ($c >= 300)" true "$(yes_no [ "$c" -ge 300 ])"

# Serve 20 x 13 keys; B fetches them all.
serve 20 "$W/before.json"
served_pairs "$W/before.json" >"$W/before"
check "260 keys served before the restore" 260 "$(grep -c . "$W/before")"
# The first ones come from the leases kmsd held in memory (not in the copy),
# the others from rows of the copy: those a naive pool would serve again.
inc=$(cut -d' ' -f1 "$W/before" | comm -12 - "$W/copy.ids" | grep -c .)
check "many served keys are in the copy ($inc >= 100)" true "$(yes_no [ "$inc" -ge 100 ])"
errs=$(fetch_at_b "$W/before" "$W/before.atb")
check "B fetched them: no error" "" "$errs"
same "B has the same bytes" "$(cat "$W/before")" "$(cat "$W/before.atb")"

# Stop, restore the old copy, start.
sh "$top/tests/testbed.sh" stop kmsd-a "$TB"
cp "$W/copy.db" "$DB"; cp "$W/copy.db-wal" "$DB-wal"; rm -f "$DB-shm"
sh "$top/tests/testbed.sh" start kmsd-a "$TB" >"$W/start.log" 2>&1 ||
	nok "kmsd A did not start on the restored copy: $(tail -n 3 "$W/start.log")"
rb=$(metric kmsd_pool_rolled_back_keys_total)
echo "# rolled back keys refused at start: $rb"
check "restored rows refused: counted in /metrics ($inc <= $rb <= $c)" true \
	"$(yes_no [ "${rb:-0}" -ge "$inc" ] && [ "${rb:-0}" -le "$c" ])"
check_match "restored rows refused: logged" "$rb keys in [0-9]+ restored/rolled back rows refused" \
	"$(grep 'restored/rolled back' "$TB/kmsd-a.log")"

# Serve again: nothing served before comes back; B fetches all (KME B
# would answer "not found" for a key it already delivered).
serve 30 "$W/after.json"
served_pairs "$W/after.json" >"$W/after"
check "390 keys served after the restore" 390 "$(grep -c . "$W/after")"
check "no key served before the restore is served again" "" \
	"$(cut -d' ' -f1 "$W/after" | comm -12 - "$W/before" | head -n 3)"
check "no key served twice after the restore" 390 "$(cut -d' ' -f1 "$W/after" | sort -u | grep -c .)"
errs=$(fetch_at_b "$W/after" "$W/after.atb")
check "B fetched the new ones: no error (none fetched before)" "" "$errs"
same "B has the same bytes for the new ones" "$(cat "$W/after")" "$(cat "$W/after.atb")"
# The copy's keys already fetched at B: KME B says so.
r=$(dec B "$KMSD_B_URL" sae-a "$(head -n 1 "$W/before" | cut -d' ' -f1 | jq -R -c '{key_IDs: [{key_ID: .}]}')")
check "a key B fetched before is not found again at B" "400/$NOTFOUND" \
	"$(http_code "$r")/$(json_get "$(http_body "$r")" .message)"

# Accounting of the copy's keys: refused, served once, or still pooled.
sh "$top/tests/testbed.sh" stop kmsd-a "$TB"
sqlite3 -readonly "$DB" 'SELECT key_id FROM keys' | sort >"$W/pool.ids"
cut -d' ' -f1 "$W/after" | sort >"$W/after.ids"
left=$(sort -m "$W/after.ids" "$W/pool.ids" | comm -12 - "$W/copy.ids" | grep -c .)
check "copy's keys: $c = $rb refused + $left served after or pooled" "$c" "$((rb + left))"
check "no key served before the restore is in the pool" "" \
	"$(cut -d' ' -f1 "$W/before" | comm -12 - "$W/pool.ids" | head -n 3)"

# The copy again, without the mark file: every row is refused.
cp "$W/copy.db" "$DB"; cp "$W/copy.db-wal" "$DB-wal"; rm -f "$DB-shm" "$DB.hwm"
sh "$top/tests/testbed.sh" start kmsd-a "$TB" >"$W/start2.log" 2>&1 ||
	nok "kmsd A did not start without its mark file: $(tail -n 3 "$W/start2.log")"
check "mark file lost: all $c keys of the copy refused" "$c" "$(metric kmsd_pool_rolled_back_keys_total)"
check_match "mark file lost: logged" "does not belong to the high-water mark file" \
	"$(grep 'does not belong' "$TB/kmsd-a.log")"
r=$(enc A "$KMSD_A_URL" sae-b '{"number":13}')
check "then enc_keys 200 with new keys" "200/" \
	"$(http_code "$r")/$(http_body "$r" | jq -r '.keys[].key_ID' | sort | comm -12 - "$W/copy.ids" | head -n 1)"

# An edited mark file: kmsd refuses to start, naming it.
sh "$top/tests/testbed.sh" stop kmsd-a "$TB"
printf 'x' | dd of="$DB.hwm" bs=1 seek=20 conv=notrunc 2>/dev/null
if sh "$top/tests/testbed.sh" start kmsd-a "$TB" >"$W/start3.log" 2>&1; then
	nok "kmsd A started with an edited mark file"
else
	check_match "edited mark file: refused, naming it" "kmsd-a.db.hwm does not authenticate" \
		"$(tail -n 5 "$TB/kmsd-a.log")"
fi
kmsd_down_clean
