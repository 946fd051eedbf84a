#!/bin/sh
# qkd-sim QKD link failures: peer killed (503 naming the link, no hang),
# peer restarted (service resumes within seconds and the two sites agree on
# every key again), transmitter restarted (receiver reconnects), peer frozen
# (enc_keys gives up with 503 instead of hanging; nothing inconsistent after).
. "$(dirname "$0")/lib.sh"
NO_KMSD=1; export NO_KMSD	# the KMEs alone: no kmsd pool drawing keys
tb_up

TBSH="sh $top/tests/testbed.sh"
# wait_enc WHO URL SLAVE SECONDS: poll enc_keys until 200; prints the last output
wait_enc() {
	end=$(($(date +%s) + $4))
	while :; do
		r=$(enc "$1" "$2" "$3" '{"number":1}')
		[ "$(http_code "$r")" = 200 ] && break
		[ "$(date +%s)" -ge "$end" ] && break
		sleep 0.2
	done
	printf '%s' "$r"
}
# roundtrip NAME: 4 enc_keys of 20 keys at A, dec_keys at B, bytes equal
roundtrip() {
	for i in 1 2 3 4; do
		r=$(enc A "$KME_A_URL" sae-b '{"number":20}')
		[ "$(http_code "$r")" = 200 ] || { nok "$1: enc_keys $i: $(http_code "$r") $(http_body "$r")"; return; }
		c=$(http_body "$r")
		r=$(dec B "$KME_B_URL" sae-a "$(idsbody "$c")")
		[ "$(http_code "$r")" = 200 ] || { nok "$1: dec_keys $i: $(http_code "$r") $(http_body "$r")"; return; }
		[ "$(pairs "$c")" = "$(pairs "$(http_body "$r")")" ] || { nok "$1: keys $i differ between A and B"; return; }
	done
	ok "$1"
}

# back_up WHAT NAME: after a restart, enc_keys at A answers 200 (NAME)
# within 5 s, that key is equal at B, and 80 more round-trip.
back_up() {
	t0=$(date +%s)
	r=$(wait_enc A "$KME_A_URL" sae-b 10)
	t1=$(date +%s)
	check "$1: $2" 200 "$(http_code "$r")"
	check "$1: within 5 s" true "$([ $((t1 - t0)) -le 5 ] && echo true || echo false)"
	dec_same "$1: first key equal at B" B "$KME_B_URL" sae-a "$(http_body "$r")"
	roundtrip "$1: 80 more keys equal at A and B"
}

roundtrip "before any failure: 80 keys equal at A and B"

# --- kill B ---
$TBSH kill b "$TB"
t0=$(date +%s)
r=$(enc A "$KME_A_URL" sae-b '{"number":1}')
t1=$(date +%s)
check "B killed: enc_keys at A: 503" 503 "$(http_code "$r")"
check_match "B killed: the message mentions the link" '[Ll]ink' "$(json_get "$(http_body "$r")" .message)"
check "B killed: no keys in the answer" null "$(json_get "$(http_body "$r")" .keys)"
check "B killed: answered within 5 s" true "$([ $((t1 - t0)) -le 5 ] && echo true || echo false)"
r=$(sae_curl A "$KME_A_URL/api/v1/keys/sae-b/status")
check_match "B killed: status at A answers (200 or 503)" '^(200|503)$' "$(http_code "$r")"

$TBSH start b "$TB"
back_up "B restarted" "enc_keys at A works again"

# Keys assigned while both are up, fetched at B while A is down.
r=$(enc A "$KME_A_URL" sae-b '{"number":7}')
pending=$(http_body "$r")
rx=$(enc X "$KME_B_URL" sae-a '{"number":3}')
check "sae-x enc_keys at B before A goes down: 200" 200 "$(http_code "$rx")"
pendx=$(http_body "$rx")

# --- kill A (the transmitter, which listens for the link) ---
$TBSH kill a "$TB"
dec_same "A killed: those keys equal A's" B "$KME_B_URL" sae-a "$pending" "A killed: dec_keys at B of keys assigned before: 200"
r=$(enc X "$KME_B_URL" sae-a '{"number":1}')
check "A killed: enc_keys at B: 503" 503 "$(http_code "$r")"
check_match "A killed: the message mentions the link" '[Ll]ink' "$(json_get "$(http_body "$r")" .message)"

$TBSH start a "$TB"
back_up "A restarted" "B reconnected, enc_keys at A works"
r=$(wait_enc X "$KME_B_URL" sae-a 5)
check "A restarted: enc_keys at B (sae-x -> sae-a) works" 200 "$(http_code "$r")"
cx=$(http_body "$r")
dec_same "A restarted: B's key equal at A" A "$KME_A_URL" sae-x "$cx"

# --- freeze B: the commit never comes back ---
bpid=$(cat "$TB/kme-b.pid")
kill -STOP "$bpid"
t0=$(date +%s)
r=$(enc A "$KME_A_URL" sae-b '{"number":5}')
t1=$(date +%s)
kill -CONT "$bpid"
check "B frozen: enc_keys at A: 503 (not a hang)" 503 "$(http_code "$r")"
check "B frozen: no keys handed out" null "$(json_get "$(http_body "$r")" .keys)"
check "B frozen: answered within 8 s" true "$([ $((t1 - t0)) -le 8 ] && echo true || echo false)"
r=$(wait_enc A "$KME_A_URL" sae-b 10)
check "B thawed: enc_keys at A works again" 200 "$(http_code "$r")"
c=$(http_body "$r")
dec_same "B thawed: key equal at B" B "$KME_B_URL" sae-a "$c"
roundtrip "B thawed: 80 more keys equal at A and B"

# --- SIGTERM B while requests run: every answer is 200 or 503, never a hang
out=$TB/during
( i=0; while [ $i -lt 30 ]; do
	r=$(enc A "$KME_A_URL" sae-b '{"number":4}'); http_code "$r"; echo
	i=$((i + 1)); done >"$out" ) &
lp=$!
sleep 0.3
$TBSH stop b "$TB"
$TBSH start b "$TB"
wait $lp
check "requests during a B restart: every answer 200 or 503" "" "$(grep -vxE '200|503' "$out" | sort -u | tr '\n' ' ')"
r=$(wait_enc A "$KME_A_URL" sae-b 10)
check "after the B restart under load: enc_keys works" 200 "$(http_code "$r")"
roundtrip "after the B restart under load: 80 keys equal at A and B"

no_crash
