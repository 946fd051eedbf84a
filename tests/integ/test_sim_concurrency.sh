#!/bin/sh
# qkd-sim under concurrency: 4 clients with a new TLS connection per
# request, 2 clients on one kept-alive connection each and one kmsclient
# loop take 13-key enc_keys at KME A while 2 sae-x clients take keys in the
# other direction at KME B (both directions draw from the same link).
# No key ID is ever handed out twice, every key is at the other KME with
# the same bytes, and 3 racing dec_keys clients at B get each key exactly once.
. "$(dirname "$0")/lib.sh"
NO_KMSD=1; export NO_KMSD	# the KMEs alone: no kmsd pool drawing keys
KEY_RATE=50000000; export KEY_RATE
tb_up

N=50		# requests per client
NX=25		# requests per sae-x client
W=$TB/conc; mkdir -p "$W"
need=$(( (4 * N + 2 * N + 25) * 13 + 2 * NX * 13 ))

# Let the store fill up so that no request meets an empty store.
i=0
while :; do
	n=$(json_get "$(http_body "$(sae_curl A "$KME_A_URL/api/v1/keys/sae-b/status")")" .stored_key_count)
	[ "${n:-0}" -ge "$need" ] && break
	i=$((i + 1)); [ $i -lt 100 ] || break
	sleep 0.1
done
check "store holds the $need keys the run needs" true "$([ "${n:-0}" -ge "$need" ] && echo true || echo false)"

# Each client writes alternating lines: compact Key container, HTTP status.
per_req() {	# WHO URL SLAVE COUNT OUT
	j=0
	while [ $j -lt "$4" ]; do
		enc "$1" "$2" "$3" '{"number":13}' >>"$5"; echo >>"$5"
		j=$((j + 1))
	done
}
keep_alive() {	# WHO-CERT WHO-KEY URL SLAVE COUNT OUT
	urls=""; j=0
	while [ $j -lt "$5" ]; do urls="$urls $3/api/v1/keys/$4/enc_keys"; j=$((j + 1)); done
	curl -s --max-time 60 --cacert "$CA" --cert "$1" --key "$2" -X POST -H "$JSON" \
		--data-binary '{"number":13}' -w '\n%{http_code}\n' $urls >>"$6"
}
kc_loop() {	# COUNT OUT
	j=0
	while [ $j -lt "$1" ]; do
		KMS_URL=$KME_A_URL KMS_CERT=$SAE_A_CERT KMS_KEY=$SAE_A_KEY KMS_CA=$CA \
			"$KMSCLIENT" --json enc sae-b -n 13 >>"$2" 2>>"$W/kc.err"
		echo "kmsclient-exit-$?" >>"$2"
		j=$((j + 1))
	done
}

t0=$(date +%s)
for c in 1 2 3 4; do per_req A "$KME_A_URL" sae-b $N "$W/a$c.out" & done
for c in 5 6; do keep_alive "$SAE_A_CERT" "$SAE_A_KEY" "$KME_A_URL" sae-b $N "$W/a$c.out" & done
if [ -x "$KMSCLIENT" ]; then kc_loop 25 "$W/a7.out" & fi
for c in 1 2; do per_req X "$KME_B_URL" sae-a $NX "$W/x$c.out" & done
wait
t1=$(date +%s)
echo "# $(( 4 * N + 2 * N + 25 + 2 * NX )) concurrent enc_keys calls took $((t1 - t0)) s"

# Statuses: every answer 200 (kmsclient: exit 0).
bad=$(for f in "$W"/a[1-6].out "$W"/x*.out; do awk 'NR % 2 == 0' "$f"; done | grep -v '^200$' | sort | uniq -c | tr '\n' ' ')
check "every concurrent enc_keys answered 200" "" "$bad"
if [ -x "$KMSCLIENT" ]; then
	check "kmsclient loop: every call exit 0" 25 "$(grep -c '^kmsclient-exit-0$' "$W/a7.out")"
	check "kmsclient loop: nothing on stderr" "" "$(cat "$W/kc.err")"
fi

# All keys, "ID KEY"
for f in "$W"/a*.out; do grep '^{' "$f"; done | jq -r '.keys[]? | "\(.key_ID) \(.key)"' | sort >"$W/a.keys"
for f in "$W"/x*.out; do grep '^{' "$f"; done | jq -r '.keys[]? | "\(.key_ID) \(.key)"' | sort >"$W/x.keys"
na_exp=$(( (4 * N + 2 * N) * 13 )); [ -x "$KMSCLIENT" ] && na_exp=$((na_exp + 25 * 13))
check "A handed out $na_exp keys" "$na_exp" "$(grep -c . "$W/a.keys")"
check "B handed out $((2 * NX * 13)) keys" "$((2 * NX * 13))" "$(grep -c . "$W/x.keys")"
cat "$W/a.keys" "$W/x.keys" | cut -d' ' -f1 | sort | uniq -d >"$W/dups"
check "no key ID handed out twice (both directions, all clients)" 0 "$(grep -c . "$W/dups")"
cat "$W/a.keys" "$W/x.keys" | cut -d' ' -f2 | sort | uniq -d >"$W/dupk"
check "no key bytes handed out twice" 0 "$(grep -c . "$W/dupk")"

# dec_keys bodies, 100 IDs each
mkbodies() {	# KEYS PREFIX
	split -l 100 "$1" "$2."
	for f in "$2".*; do
		cut -d' ' -f1 "$f" | jq -R -s -c '{key_IDs: [split("\n")[] | select(. != "") | {key_ID: .}]}' >"$f.json"
	done
}
mkbodies "$W/a.keys" "$W/ca"
mkbodies "$W/x.keys" "$W/cx"
nchunks=$(ls "$W"/ca.*.json | wc -l | tr -d ' ')

# 3 racing sae-b clients at B, each asking for every chunk (in different orders).
racer() {	# ORDER OUT
	for f in $(ls "$W"/ca.*.json | $1); do
		r=$(sae_curl B -X POST -H "$JSON" --data-binary @"$f" "$KME_B_URL/api/v1/keys/sae-a/dec_keys")
		echo "$(http_code "$r")" >>"$2.codes"
		[ "$(http_code "$r")" = 200 ] && pairs "$(http_body "$r")" >>"$2.keys"
	done
	: >>"$2.keys"
}
racer cat "$W/r1" & racer 'sort -r' "$W/r2" & racer 'shuf' "$W/r3" &
# meanwhile sae-a fetches B's keys at A
: >"$W/xa.keys"
for f in "$W"/cx.*.json; do
	r=$(sae_curl A -X POST -H "$JSON" --data-binary @"$f" "$KME_A_URL/api/v1/keys/sae-x/dec_keys")
	pairs "$(http_body "$r")" >>"$W/xa.keys"
done
wait
check "racing dec_keys: exactly one 200 per chunk" "$nchunks" "$(cat "$W"/r?.codes | grep -c '^200$')"
check "racing dec_keys: every other answer 400" "" "$(cat "$W"/r?.codes | grep -vxE '200|400' | sort -u | tr '\n' ' ')"
sort "$W"/r?.keys >"$W/b.keys"
check "racing dec_keys: no key delivered twice" 0 "$(cut -d' ' -f1 "$W/b.keys" | uniq -d | grep -c .)"
same "every key of A is at B with the same bytes" "$(cat "$W/a.keys")" "$(cat "$W/b.keys")"
same "every key of B (sae-x) is at A with the same bytes" "$(cat "$W/x.keys")" "$(sort "$W/xa.keys")"

no_crash
