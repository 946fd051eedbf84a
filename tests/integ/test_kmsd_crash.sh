#!/bin/sh
# kmsd crash safety, the daemon's most important promise: under 4 concurrent
# clients taking 13 pooled keys per enc_keys, kmsd A is killed with SIGKILL
# at different moments and restarted on the same pool database, several
# times. Afterwards: no key ID was ever served twice, and every key served at
# A is retrievable at B (through kmsd B) with identical bytes.
. "$(dirname "$0")/lib.sh"
# Keys fast enough for the pool to keep up with the load, and a pool big
# enough that most requests are pool hits.
KEY_RATE=4000000; POOL_LOW=1000; POOL_HIGH=3000; export KEY_RATE POOL_LOW POOL_HIGH
tb_up

W=$TB/crash; mkdir -p "$W"
ENC=$KMSD_A_URL/api/v1/keys/sae-b/enc_keys
metric() { curl -s "$1/metrics" | awk -v m="$2" '$1 == m { print $2; exit }'; }
HIT='kmsd_pool_requests_total{result="hit"}'

pool_wait_low

hits=0
# crash DELAY: let the load run DELAY seconds, SIGKILL kmsd A, restart it.
crash() {
	sleep "$1"
	h=$(metric "$KMSD_A_OPS" "$HIT")
	sh "$top/tests/testbed.sh" kill kmsd-a "$TB"
	hits=$((hits + ${h:-0}))
	sleep 0.2
	if sh "$top/tests/testbed.sh" start kmsd-a "$TB" >>"$W/restart.log" 2>&1; then
		ok "kmsd A restarted after SIGKILL under load ($2)"
	else
		nok "kmsd A did not restart after SIGKILL ($2): $(tail -n 3 "$W/restart.log")"
	fi
}

for c in 1 2 3 4; do enc_client $c & done
crash 1.5 "kill 1, 1.5 s into the load"
crash 0.3 "kill 2, 0.3 s after a restart"
crash 1.1 "kill 3, 1.1 s after a restart"
crash 0.05 "kill 4, at once after a restart"
sleep 1.5
h=$(metric "$KMSD_A_OPS" "$HIT"); hits=$((hits + ${h:-0}))
touch "$W/stop"
wait

# Everything the clients received: "key_ID key" lines.
served_pairs "$W"/client.*.json >"$W/served"
n=$(grep -c . "$W/served")
echo "# $n keys served at A in $(ls "$W" | grep -c '^client\.') curl runs; $hits pool hits"
check "many keys served at A across the crashes ($n > 2000)" true "$(yes_no [ "$n" -gt 2000 ])"
check "most keys came from the pool ($hits pool hits x 13 > $n / 2)" true "$(yes_no [ $((hits * 26)) -gt "$n" ])"
check "no key ID served twice" "" "$(cut -d' ' -f1 "$W/served" | uniq -d | head -n 5 | tr '\n' ' ')"
check "no key ID served twice, even with other bytes" "$n" "$(cut -d' ' -f1 "$W/served" | sort -u | grep -c .)"

# Every served key at B through kmsd B, 100 IDs per dec_keys, all on one
# curl (keep-alive) driven by a config file.
errs=$(fetch_at_b "$W/served" "$W/atb")
check "dec_keys at B: no error answers" "" "$errs"
check "every key served at A is at B ($n keys)" "$n" "$(grep -c . "$W/atb")"
if [ "$n" -gt 0 ] && cmp -s "$W/served" "$W/atb"; then
	ok "every key served at A has identical bytes at B"
else
	nok "keys at B differ from A's: $(diff "$W/served" "$W/atb" | grep -c '^[<>]') lines differ"
fi

# kmsd A works normally after all that.
r=$(sae_curl A -X POST -H "$JSON" -d '{"number":13}' "$ENC")
check "after the crashes: enc_keys 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
check "after the crashes: the 13 keys are new" "" \
	"$(printf '%s' "$c" | jq -r '.keys[].key_ID' | sort | join - "$W/served" | head -n 3)"
r=$(sae_curl B -X POST -H "$JSON" -d "$(printf '%s' "$c" | jq -c '{key_IDs: [.keys[] | {key_ID}]}')" \
	"$KMSD_B_URL/api/v1/keys/sae-a/dec_keys")
check "after the crashes: those keys identical at B" \
	"$(printf '%s' "$c" | jq -r '.keys[] | "\(.key_ID) \(.key)"' | sort)" \
	"$(http_body "$r" | jq -r '.keys[] | "\(.key_ID) \(.key)"' | sort)"
check "kek file still mode 600" 600 "$(stat -c %a "$TB/kmsd-a.kek")"

# --- the pool database: nothing served is left in it, nothing in clear ---
# hexes FILE: the raw bytes of every 32-byte key in a "key_ID key" file, one
# hex line per key.
hexes() { cut -d' ' -f2 "$1" | base64 -d | od -An -v -tx1 -w32 | tr -d ' '; }
# in_clear KEYFILE FILE...: how many of KEYFILE's keys appear in the files as
# raw bytes or as base64 text.
in_clear() {
	kf=$1; shift
	hexes "$kf" >"$W/pat.hex"; cut -d' ' -f2 "$kf" >"$W/pat.b64"
	n=0
	for f in "$@"; do
		[ -f "$f" ] || continue
		od -An -v -tx1 "$f" | tr -d ' \n' >"$W/file.hex"
		h=$(grep -o -F -f "$W/pat.hex" "$W/file.hex" | wc -l)
		b=$(grep -a -o -F -f "$W/pat.b64" "$f" | wc -l)
		n=$((n + h + b))
	done
	echo $n
}
check "served keys: none in clear in the pool database, WAL or shm" 0 \
	"$(in_clear "$W/served" "$TB"/kmsd-a.db*)"
head -n 1 "$W/served" | cut -d' ' -f2 | base64 -d >"$W/control"
check "control: the clear-text search finds a planted key" 1 "$(in_clear "$W/served" "$W/control")"
if command -v sqlite3 >/dev/null 2>&1; then
	sh "$top/tests/testbed.sh" stop kmsd-a "$TB"
	sqlite3 -readonly "$TB/kmsd-a.db" 'SELECT key_id FROM keys' 2>"$W/sqlite.err" | sort >"$W/inpool"
	check "the pool database opens and still holds keys ($(grep -c . "$W/inpool"))" true \
		"$(yes_no [ "$(grep -c . "$W/inpool")" -gt 0 ])"
	check "no key ID served at A is still in the pool database" "" \
		"$(cut -d' ' -f1 "$W/served" | comm -12 - "$W/inpool" | head -n 3 | tr '\n' ' ')"
	# The bytes of 100 pooled (never served) keys, fetched at B: not in clear.
	head -n 100 "$W/inpool" | jq -R '{key_ID: .}' | jq -sc '{key_IDs: .}' >"$W/pool.body"
	r=$(sae_curl B -X POST -H "$JSON" --data-binary @"$W/pool.body" "$KMSD_B_URL/api/v1/keys/sae-a/dec_keys")
	check "100 pooled keys fetched at B: 200" 200 "$(http_code "$r")"
	http_body "$r" | jq -r '.keys[] | "\(.key_ID) \(.key)"' >"$W/pooled"
	check "pooled keys: none in clear in the pool database, WAL or shm" 0 \
		"$(in_clear "$W/pooled" "$TB"/kmsd-a.db*)"
	sh "$top/tests/testbed.sh" start kmsd-a "$TB" >/dev/null 2>&1
else
	nok "sqlite3 not installed (Debian package sqlite3, see mk/deps.sh): pool database content not checked"
fi
kmsd_alive
kmsd_down_clean
