#!/bin/sh
# kmsd's Status through the pool keeps the ETSI 014 relations an
# independent client checks: with KME A full, stored_key_count <=
# max_key_count (the pool's keys and capacity are added to the KME's),
# max_key_per_request <= max_key_count, min_key_size <= key_size <=
# max_key_size; the values are checked against KME A's own Status and kmsd's
# /healthz. A kmsd whose pool key size is not the KME's default warns in its
# log and in /metrics.
. "$(dirname "$0")/lib.sh"
KEY_RATE=4000000; MAX_KEY_COUNT=300; POOL_LOW=200; POOL_HIGH=500
export KEY_RATE MAX_KEY_COUNT POOL_LOW POOL_HIGH
tb_up

st() { http_body "$(sae_curl "$1" "$2/api/v1/keys/$3/status")"; }
# Full: KME A at its max_key_count and kmsd A's pool at its high mark.
i=0
until [ "$(json_get "$(st KA "$KME_A_URL" sae-b)" .stored_key_count)" = "$MAX_KEY_COUNT" ] &&
    [ "$(poolkeys)" = "$POOL_HIGH" ]; do
	i=$((i + 1)); [ $i -lt 100 ] || break; sleep 0.1
done
kme=$(st KA "$KME_A_URL" sae-b)
k=$(st A "$KMSD_A_URL" sae-b)
pool=$(poolkeys)
echo "# KME A: $(json_get "$kme" -c .)"
echo "# kmsd A: $(json_get "$k" -c .)"
check "KME A full" "$MAX_KEY_COUNT" "$(json_get "$kme" .stored_key_count)"
check "kmsd A's pool full" "$POOL_HIGH" "$pool"
check "kmsd: stored_key_count = KME's + pool's" "$((MAX_KEY_COUNT + POOL_HIGH))" "$(json_get "$k" .stored_key_count)"
check "kmsd: max_key_count = KME's + pool's high mark" "$((MAX_KEY_COUNT + POOL_HIGH))" "$(json_get "$k" .max_key_count)"
relations='[.stored_key_count <= .max_key_count, .max_key_per_request <= .max_key_count,
	.max_key_per_request >= 1, .min_key_size <= .key_size, .key_size <= .max_key_size,
	.key_size % 8 == 0] | all'
check "kmsd A (pooled pair, KME full): the spec's relations hold" true "$(json_get "$k" "$relations")"
check "kmsd: max_key_per_request capped by max_key_count (1024 > $((MAX_KEY_COUNT + POOL_HIGH)))" \
	"$((MAX_KEY_COUNT + POOL_HIGH))" "$(json_get "$k" .max_key_per_request)"
check "kmsd: key_size is the pool's (256)" 256 "$(json_get "$k" .key_size)"
check "kmsd: IDs are the KME's" "$(json_get "$kme" '"\(.source_KME_ID) \(.target_KME_ID) \(.master_SAE_ID) \(.slave_SAE_ID)"')" \
	"$(json_get "$k" '"\(.source_KME_ID) \(.target_KME_ID) \(.master_SAE_ID) \(.slave_SAE_ID)"')"
b=$(st B "$KMSD_B_URL" sae-a)
check "kmsd B (no pool): the spec's relations hold" true "$(json_get "$b" "$relations")"
check "kmsd B (no pool): stored_key_count is KME B's" \
	"$(json_get "$(st KB "$KME_B_URL" sae-a)" .stored_key_count)" "$(json_get "$b" .stored_key_count)"
check "kmsd A: no key size mismatch with the KME" 0 \
	"$(curl -s "$KMSD_A_OPS/metrics" | awk '$1 == "kmsd_pool_key_size_mismatch" { print $2 }')"

# A second kmsd at site A whose pool holds 512-bit keys (KME A's default: 256).
sed -e 's/^\[pool\]$/[pool]\nkey_size = 512/' -e "s#^db = .*#db = $TB/k512.db#" \
	-e "s#^kek_file = .*#kek_file = $TB/k512.kek#" -e 's/^listen = .*/listen = 127.0.0.1:0/' \
	-e 's/^metrics_listen = .*/metrics_listen = 127.0.0.1:0/' "$TB/kmsd-a.conf" >"$TB/k512.conf"
"$BINDIR/kmsd" --config "$TB/k512.conf" --ready-file "$TB/k512.ready" >"$TB/k512.log" 2>&1 &
pid=$!
i=0
while [ ! -s "$TB/k512.ready" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
ops=http://127.0.0.1:$(sed -n 's/^metrics_port=//p' "$TB/k512.ready")
api=https://127.0.0.1:$(sed -n 's/^api_port=//p' "$TB/k512.ready")
i=0
until [ "$(curl -s "$ops/metrics" | awk '$1 == "kmsd_pool_key_size_mismatch" { print $2 }')" = 1 ]; do
	i=$((i + 1)); [ $i -lt 50 ] || break; sleep 0.1
done
m=$(curl -s "$ops/metrics")
check "512-bit pool: kmsd_pool_key_size_mismatch 1" 1 "$(printf '%s\n' "$m" | awk '$1 == "kmsd_pool_key_size_mismatch" { print $2 }')"
check "512-bit pool: kmsd_kme_key_size_bits 256" 256 "$(printf '%s\n' "$m" | awk '$1 == "kmsd_kme_key_size_bits" { print $2 }')"
check_match "512-bit pool: the mismatch is logged" "default key_size is 256 bits, the pool's key_size 512" \
	"$(grep 'key_size' "$TB/k512.log")"
k=$(st A "$api" sae-b)
check "512-bit pool: status key_size 512, relations hold" "512/true" \
	"$(json_get "$k" .key_size)/$(json_get "$k" "$relations")"
kill -TERM "$pid"; wait "$pid"
check "512-bit kmsd stops cleanly on SIGTERM" 0 "$?"
kmsd_down_clean "$TB/k512.log"
