#!/bin/sh
# Keys drawn per connection by the real ike-ue and ike-n3iwf, counted at the
# key servers (kmsd's /metrics and the KMEs' stored_key_count), not by the
# endpoints:
#   qkd      ONE enc_keys {13} at kmsd A (N3IWF) and ONE dec_keys at kmsd B
#            (UE) per connection; served from kmsd A's pool for sae-b (the
#            pool drops by 13 per connection, the KMEs do not move), straight
#            from KME A for sae-x (no pool: ONE upstream enc_keys per
#            connection, both KMEs' stored_key_count drop by 13).
#   qkd, --qkd-schedule prf: the same calls with ONE key each: enc_keys {1}
#            at kmsd A, dec_keys with 1 ID at kmsd B; the pool (sae-b) or
#            both KMEs (sae-x) drop by 1 per connection. Both schedules also
#            in the rfc7296 profile (13 vs 1).
#   qkd+dh   ONE enc_keys {1} at kmsd B (the UE is the master SAE) and ONE
#            dec_keys at kmsd A per connection; both KMEs drop by 1.
# The KMEs fill up to MAX_KEY_COUNT first; then KME A (the transmitter) is
# restarted with its state and a link rate of 1 bit/s, so no key is made
# while we count and every delta is exact.
. "$(dirname "$0")/lib.sh"
STATE_DIR=$TB/state; MAX_KEY_COUNT=3000; export STATE_DIR MAX_KEY_COUNT
tb_up
N3_OPTS="--peer-sae sae-b"
. "$(dirname "$0")/ike_lib.sh"
N=3
N3PID=""
trap 'kill "$N3PID" 2>/dev/null; tb_cleanup' EXIT INT TERM

# kme_count URL SAE PEER: stored_key_count of the KME as seen by SAE (its own
# certificate, else its site's kmsd certificate if the KME refuses the SAE).
kme_count() {
	for id in "$2" "kmsd-${2#sae-}.$2"; do
		n=$(curl -s --max-time 10 --cacert "$CA" --cert "${CA%/*}/$id.crt" \
			--key "${CA%/*}/$id.key" "$1/api/v1/keys/$3/status" | jq -r '.stored_key_count // empty')
		[ -n "$n" ] && { echo "$n"; return; }
	done
	echo "?"
}
# metric OPS NAME: the value of one Prometheus sample of a kmsd.
metric() { curl -s --max-time 10 "$1/metrics" | awk -v m="$2" '$1 == m { print $2; f = 1 } END { if (!f) print "?" }'; }
REQ='kmsd_requests_total{endpoint="%s",code="200"}'
SERVED='kmsd_keys_served_total{endpoint="%s"}'
UPS='kmsd_upstream_requests_total{endpoint="%s",result="ok"}'
POOL='kmsd_pool_keys{master="sae-a",slave="sae-b"}'
# snap: every counter we check, one "name value" per line.
snap() {
	echo "kmeA $(kme_count "$KME_A_URL" sae-a sae-b)"
	echo "kmeB $(kme_count "$KME_B_URL" sae-b sae-a)"
	for s in a b; do
		[ $s = a ] && ops=$KMSD_A_OPS || ops=$KMSD_B_OPS
		for e in enc_keys dec_keys; do
			echo "$s.req.$e $(metric "$ops" "$(printf "$REQ" $e)")"
			echo "$s.served.$e $(metric "$ops" "$(printf "$SERVED" $e)")"
			echo "$s.up.$e $(metric "$ops" "$(printf "$UPS" $e)")"
		done
	done
	echo "pool $(metric "$KMSD_A_OPS" "$POOL")"
}
# delta NAME: after - before for one counter of the two snapshots.
delta() {
	b=$(sed -n "s/^$1 //p" "$TB/before"); a=$(sed -n "s/^$1 //p" "$TB/after")
	case "$a$b" in *'?'*|'') echo "?"; return ;; esac
	echo $((a - b))
}
# expect TITLE NAME=DELTA...: one check per counter.
expect() {
	t=$1; shift
	for nv in "$@"; do check "$t: delta of ${nv%=*}" "${nv#*=}" "$(delta "${nv%=*}")"; done
}

# Fill up, then stop the link from making keys (KME A restarted at 1 bit/s).
i=0
until [ "$(kme_count "$KME_A_URL" sae-a sae-b)" = 3000 ] &&
    [ "$(kme_count "$KME_B_URL" sae-b sae-a)" = 3000 ] &&
    [ "$(metric "$KMSD_A_OPS" "$POOL")" = 1024 ]; do
	i=$((i + 1)); [ $i -lt 300 ] || break; sleep 0.1
done
check "KMEs full and kmsd A's pool at its high mark" "3000 3000 1024" \
	"$(kme_count "$KME_A_URL" sae-a sae-b) $(kme_count "$KME_B_URL" sae-b sae-a) $(metric "$KMSD_A_OPS" "$POOL")"
sed -i 's/^key_rate = .*/key_rate = 1/' "$TB/kme-a.conf"
sh "$top/tests/testbed.sh" stop a "$TB" && sh "$top/tests/testbed.sh" start a "$TB" ||
	{ nok "KME A restart: $(tail -n 2 "$TB/kme-a.log")"; exit 1; }
i=0
until grep -q 'QKD link to kme-a .* up' "$TB/kme-b.log" &&
    [ "$(grep -c 'QKD link to kme-a .* up' "$TB/kme-b.log")" -ge 2 ]; do
	i=$((i + 1)); [ $i -lt 200 ] || break; sleep 0.05
done
check "KME A back with its keys, link up again" 3000 "$(kme_count "$KME_A_URL" sae-a sae-b)"

# run MODE UE_SAE [SCHEDULE [PROFILE]]: N connections (nwu, paper by
# default), both sides' exit codes.
run() {
	n3_start "$1" "${4:-nwu}" --max-conns $N --qkd-schedule "${3:-paper}"
	[ -n "$N3PORT" ] || { nok "$1: N3IWF did not start: $(tail -n 2 "$TB/n3.log")"; return; }
	timeout 60 "$UE" --mode "$1" --profile "${4:-nwu}" --peer "127.0.0.1:$N3PORT" --ca "$CA" \
		--kmsd-url "$KMSD_B_URL" --kmsd-cert "${CA%/*}/$2.crt" --kmsd-key "${CA%/*}/$2.key" \
		--kmsd-ca "$CA" --peer-sae sae-a --count $N --qkd-schedule "${3:-paper}" 2>"$TB/ue.log"
	check "$1 as $2: ike-ue completes $N connections" 0 "$?"
	i=0
	while kill -0 "$N3PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	kill -TERM "$N3PID" 2>/dev/null
	wait "$N3PID"
	check "$1 as $2: ike-n3iwf exits by itself after $N" 0 "$?"
	N3PID=""
	if grep -qiE 'sanitizer|runtime error' "$TB/ue.log" "$TB/n3.log"; then nok "$1: sanitizer report"; fi
}
K=$((13 * N))

# qkd, UE = sae-b: kmsd A's pool serves.
snap >"$TB/before"; run qkd sae-b; snap >"$TB/after"
expect "qkd/sae-b (pool), $N conns" a.req.enc_keys=$N a.served.enc_keys=$K pool=-$K \
	a.up.enc_keys=0 b.req.dec_keys=$N b.served.dec_keys=$K b.up.dec_keys=$N \
	kmeA=0 kmeB=0 a.req.dec_keys=0 b.req.enc_keys=0

# qkd, UE = sae-x: no pool for that pair, each enc_keys goes to KME A.
snap >"$TB/before"; run qkd sae-x; snap >"$TB/after"
expect "qkd/sae-x (no pool), $N conns" a.req.enc_keys=$N a.served.enc_keys=$K pool=0 \
	a.up.enc_keys=$N b.req.dec_keys=$N b.served.dec_keys=$K b.up.dec_keys=$N \
	kmeA=-$K kmeB=-$K a.req.dec_keys=0 b.req.enc_keys=0

# qkd with the prf schedule: ONE key per connection, at both key servers.
snap >"$TB/before"; run qkd sae-b prf; snap >"$TB/after"
expect "qkd prf/sae-b (pool), $N conns" a.req.enc_keys=$N a.served.enc_keys=$N pool=-$N \
	a.up.enc_keys=0 b.req.dec_keys=$N b.served.dec_keys=$N b.up.dec_keys=$N \
	kmeA=0 kmeB=0 a.req.dec_keys=0 b.req.enc_keys=0
check "qkd prf/sae-b: the prf schedule in every connection" $N \
	"$(grep -c 'IKE SA established (qkd, nwu).*QKD key schedule prf' "$TB/ue.log")"
snap >"$TB/before"; run qkd sae-x prf; snap >"$TB/after"
expect "qkd prf/sae-x (no pool), $N conns" a.req.enc_keys=$N a.served.enc_keys=$N pool=0 \
	a.up.enc_keys=$N b.req.dec_keys=$N b.served.dec_keys=$N b.up.dec_keys=$N \
	kmeA=-$N kmeB=-$N a.req.dec_keys=0 b.req.enc_keys=0

# Both schedules in the rfc7296 profile: 13 vs 1 keys per connection.
snap >"$TB/before"; run qkd sae-b paper rfc7296; snap >"$TB/after"
expect "qkd paper/rfc7296, $N conns" a.req.enc_keys=$N a.served.enc_keys=$K pool=-$K \
	b.req.dec_keys=$N b.served.dec_keys=$K kmeA=0 kmeB=0
snap >"$TB/before"; run qkd sae-b prf rfc7296; snap >"$TB/after"
expect "qkd prf/rfc7296, $N conns" a.req.enc_keys=$N a.served.enc_keys=$N pool=-$N \
	b.req.dec_keys=$N b.served.dec_keys=$N kmeA=0 kmeB=0

# qkd+dh: one PPK per connection, the UE is the master SAE.
snap >"$TB/before"; run qkd+dh sae-b; snap >"$TB/after"
expect "qkd+dh, $N conns" b.req.enc_keys=$N b.served.enc_keys=$N b.up.enc_keys=$N \
	a.req.dec_keys=$N a.served.dec_keys=$N a.up.dec_keys=$N kmeA=-$N kmeB=-$N pool=0 \
	a.req.enc_keys=0 b.req.dec_keys=0
check "qkd+dh: PPK used in every connection" $N "$(grep -c 'IKE SA established.*PPK used' "$TB/ue.log")"
exit 0
