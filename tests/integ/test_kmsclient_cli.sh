#!/bin/sh
# bin/kmsclient against the real qkd-sim pair: help and usage errors (exit 2),
# status/enc/dec in text and JSON, POST and GET forms, env defaults vs flags,
# multicast, KME refusals (exit 1 with the KME's message on stderr, nothing
# on stdout) and transport/TLS failures (exit 3), timeouts.
. "$(dirname "$0")/lib.sh"
NO_KMSD=1; export NO_KMSD	# the KMEs alone: no kmsd pool drawing keys
[ -x "$KMSCLIENT" ] || { echo "not ok - $KMSCLIENT not built"; exit 1; }
tb_up

PKI=$(dirname "$CA")
ERR=$TB/kc.err
# kc WHO ARGS...: kmsclient as SAE WHO (A, B, X at their own KME, or NONE:
# no environment at all); stdout captured by the caller, stderr in $ERR.
kc() {
	who=$1; shift
	case $who in
	A) env KMS_URL="$KME_A_URL" KMS_CERT="$SAE_A_CERT" KMS_KEY="$SAE_A_KEY" KMS_CA="$CA" "$KMSCLIENT" "$@" 2>"$ERR" ;;
	B) env KMS_URL="$KME_B_URL" KMS_CERT="$SAE_B_CERT" KMS_KEY="$SAE_B_KEY" KMS_CA="$CA" "$KMSCLIENT" "$@" 2>"$ERR" ;;
	X) env KMS_URL="$KME_B_URL" KMS_CERT="$SAE_X_CERT" KMS_KEY="$SAE_X_KEY" KMS_CA="$CA" "$KMSCLIENT" "$@" 2>"$ERR" ;;
	NONE) env -u KMS_URL -u KMS_CERT -u KMS_KEY -u KMS_CA "$KMSCLIENT" "$@" 2>"$ERR" ;;
	esac
}
# text output "ID  KEY" -> "ID KEY" sorted, like pairs()
norm() { printf '%s\n' "$1" | awk 'NF { print $1, $2 }' | sort; }
# key lengths in bytes of text output, distinct
tlens() { printf '%s\n' "$1" | awk 'NF { print $2 }' | while read -r k; do printf '%s' "$k" | base64 -d | wc -c; done | sort -u | tr -d ' '; }
rcis() { check "$1: exit status" "$2" "$3"; }

# --- help and usage ---
out=$(kc NONE --help); rc=$?
rcis "kmsclient --help" 0 $rc
check_match "kmsclient --help: usage line" '^usage: kmsclient \[options\] COMMAND' "$out"
check_match "kmsclient --help: lists status, enc and dec" 'status SLAVE_SAE_ID.*enc SLAVE_SAE_ID.*dec MASTER_SAE_ID' "$(printf '%s' "$out" | tr '\n' ' ')"
check_match "kmsclient --help: documents the exit codes" 'exit status: 0 ok, 1 KME refused, 2 usage error, 3 transport' "$out"
for cmd in status enc dec; do
	out=$(kc NONE $cmd --help); rc=$?
	rcis "kmsclient $cmd --help" 0 $rc
	check_match "kmsclient $cmd --help: its usage on stdout" "^usage: kmsclient \\[options\\] $cmd " "$out"
done
out=$(kc NONE enc --help)
check_match "kmsclient enc --help: documents -n -s -a --get" '\-n, --number.*-s, --size.*-a, --additional.*-g, --get' "$(printf '%s' "$out" | tr '\n' ' ')"
out=$(kc NONE help); rcis "kmsclient help" 0 $?

kc NONE >/dev/null; rcis "kmsclient without a command" 2 $?
kc NONE frobnicate >/dev/null; rcis "kmsclient frobnicate" 2 $?
check_match "unknown command: says so" 'unknown command "frobnicate"' "$(cat "$ERR")"
kc NONE --bogus status sae-b >/dev/null; rcis "unknown global option" 2 $?
kc A enc >/dev/null; rcis "enc without SLAVE" 2 $?
kc A enc sae-b sae-x >/dev/null; rcis "enc with two slaves" 2 $?
kc A enc sae-b -n 0 >/dev/null; rcis "enc -n 0" 2 $?
kc A enc sae-b -n abc >/dev/null; rcis "enc -n abc" 2 $?
kc A enc sae-b -n -3 >/dev/null; rcis "enc -n -3" 2 $?
kc A enc sae-b -s x >/dev/null; rcis "enc -s x" 2 $?
kc A enc sae-b -a 'bad/id' >/dev/null; rcis "enc -a bad/id" 2 $?
kc A enc sae-b --get -a sae-x >/dev/null; rcis "enc --get with -a" 2 $?
kc A enc sae-b --frob >/dev/null; rcis "enc --frob" 2 $?
kc B dec sae-a >/dev/null; rcis "dec without KEY_ID" 2 $?
kc B dec >/dev/null; rcis "dec without anything" 2 $?
kc B dec --get sae-a 00000000-0000-4000-8000-000000000000 00000000-0000-4000-8000-000000000001 >/dev/null
rcis "dec --get with two key IDs" 2 $?
kc B dec sae-a "$(awk 'BEGIN { for (i = 0; i < 65; i++) printf "a" }')" >/dev/null
rcis "dec with a 65-character key ID" 2 $?
kc A status >/dev/null; rcis "status without SLAVE" 2 $?
kc A --timeout 0 status sae-b >/dev/null; rcis "--timeout 0" 2 $?
kc A --timeout abc status sae-b >/dev/null; rcis "--timeout abc" 2 $?
kc NONE status sae-b >/dev/null; rcis "no URL (neither --url nor KMS_URL)" 2 $?
check_match "no URL: says so" 'KMS_URL' "$(cat "$ERR")"
kc A status 'a/b' >/dev/null; rcis "status with an invalid SAE ID" 2 $?

# --- status ---
out=$(kc A status sae-b); rc=$?
rcis "status sae-b (env)" 0 $rc
check "status text: source_KME_ID line" "source_KME_ID        kme-a" "$(printf '%s\n' "$out" | grep '^source_KME_ID')"
check "status text: slave_SAE_ID line" "slave_SAE_ID         sae-b" "$(printf '%s\n' "$out" | grep '^slave_SAE_ID')"
check "status text: 11 lines" 11 "$(printf '%s\n' "$out" | grep -c .)"
check "status: nothing on stderr" "" "$(cat "$ERR")"
out=$(kc NONE --url "$KME_A_URL" --cert "$SAE_A_CERT" --key "$SAE_A_KEY" --ca "$CA" --json status sae-b); rc=$?
rcis "status --json with flags only" 0 $rc
check "status --json: target_KME_ID" kme-b "$(json_get "$out" .target_KME_ID)"
check "status --json: max_key_per_request" 128 "$(json_get "$out" .max_key_per_request)"
check "status --json: master_SAE_ID" sae-a "$(json_get "$out" .master_SAE_ID)"
# flags beat the environment: env says KME B as sae-b, flags say KME A as sae-a
out=$(kc B --url "$KME_A_URL" --cert "$SAE_A_CERT" --key "$SAE_A_KEY" --json status sae-b); rc=$?
rcis "flags override KMS_* variables" 0 $rc
check "flags override: master_SAE_ID from --cert" sae-a "$(json_get "$out" .master_SAE_ID)"

# --- enc / dec, text ---
out=$(kc A enc sae-b -n 3 -s 512); rc=$?
rcis "enc sae-b -n 3 -s 512" 0 $rc
check "enc text: 3 lines" 3 "$(printf '%s\n' "$out" | grep -c .)"
check "enc text: lines are UUID, two spaces, base64" 3 \
	"$(printf '%s\n' "$out" | grep -cE '^[0-9a-fA-F-]{36}  [A-Za-z0-9+/]+=*$')"
check "enc text: 64-byte keys" 64 "$(tlens "$out")"
ids=$(printf '%s\n' "$out" | awk 'NF { print $1 }')
out2=$(kc B dec sae-a $ids); rc=$?
rcis "dec sae-a ID ID ID at B" 0 $rc
same "dec text: same IDs and keys as enc" "$(norm "$out")" "$(norm "$out2")"
out3=$(kc B dec sae-a $ids); rc=$?
rcis "dec of the same IDs again (KME refuses)" 1 $rc
check "refused dec: nothing on stdout" "" "$out3"
check_match "refused dec: status and the KME's message on stderr" \
	'400.*one or more keys specified are not found on KME' "$(cat "$ERR")"

# options after the operand, long forms
out=$(kc A enc --number 2 sae-b --size 64); rc=$?
rcis "enc --number 2 sae-b --size 64" 0 $rc
check "enc long options: 2 keys of 8 bytes" "2 8" "$(printf '%s\n' "$out" | grep -c .) $(tlens "$out")"
out2=$(kc B dec $(printf '%s\n' "$out" | awk 'NF { print $1 }' | sed '1s/^/sae-a /'))
same "dec of the long-option keys" "$(norm "$out")" "$(norm "$out2")"

# GET forms
out=$(kc A enc sae-b --get -n 2 -s 128); rc=$?
rcis "enc --get -n 2 -s 128" 0 $rc
check "enc --get: 2 keys of 16 bytes" "2 16" "$(printf '%s\n' "$out" | grep -c .) $(tlens "$out")"
got=""
for id in $(printf '%s\n' "$out" | awk 'NF { print $1 }'); do
	o=$(kc B dec --get sae-a "$id"); rc=$?
	rcis "dec --get $id" 0 $rc
	got="$got$o
"
done
same "dec --get: same keys" "$(norm "$out")" "$(norm "$got")"
out=$(kc A enc sae-b); rc=$?
rcis "enc with defaults" 0 $rc
check "enc defaults: one key of 32 bytes" "1 32" "$(printf '%s\n' "$out" | grep -c .) $(tlens "$out")"
kc B dec sae-a $(printf '%s\n' "$out" | awk 'NF { print $1 }') >/dev/null
rcis "dec of the default key" 0 $?

# --- JSON ---
out=$(kc A --json enc sae-b -n 4); rc=$?
rcis "--json enc -n 4" 0 $rc
check "--json enc: a Key container with 4 keys" 4 "$(json_get "$out" '.keys | length')"
dec_same "--json enc: curl dec_keys at B gets the same bytes" B "$KME_B_URL" sae-a "$out"
c=$(http_body "$(enc A "$KME_A_URL" sae-b '{"number":2}')")
out=$(kc B --json dec sae-a $(json_get "$c" '.keys[].key_ID')); rc=$?
rcis "--json dec of keys from curl enc_keys" 0 $rc
same "--json dec: same bytes as curl's enc_keys" "$(pairs "$c")" "$(pairs "$out")"

# --- multicast ---
out=$(kc A enc sae-b -n 2 -a sae-x); rc=$?
rcis "enc -a sae-x" 0 $rc
ids=$(printf '%s\n' "$out" | awk 'NF { print $1 }')
ob=$(kc B dec sae-a $ids); rcis "multicast: sae-b dec" 0 $?
ox=$(kc X dec sae-a $ids); rcis "multicast: sae-x dec" 0 $?
same "multicast: sae-b bytes" "$(norm "$out")" "$(norm "$ob")"
same "multicast: sae-x bytes" "$(norm "$out")" "$(norm "$ox")"
kc A enc sae-b -a nobody >/dev/null; rcis "enc -a nobody (KME refuses)" 1 $?
check_match "enc -a nobody: stderr names it" 'nobody' "$(cat "$ERR")"

# --- KME refusals: exit 1, message from the KME ---
out=$(kc A enc sae-b -s 100); rc=$?
rcis "enc -s 100" 1 $rc
check "enc -s 100: nothing on stdout" "" "$out"
check_match "enc -s 100: 400 and the spec's message" '400.*size shall be a multiple of 8' "$(cat "$ERR")"
kc A enc sae-b -n 129 >/dev/null; rcis "enc -n 129 (> max_key_per_request)" 1 $?
check_match "enc -n 129: 400 on stderr" '400' "$(cat "$ERR")"
kc B enc sae-a --get -s 100 >/dev/null; rcis "enc --get -s 100" 1 $?
kc NONE --url "$KME_A_URL" --cert "$SAE_B_CERT" --key "$SAE_B_KEY" --ca "$CA" status sae-a >/dev/null
rcis "sae-b at KME A (401)" 1 $?
check_match "sae-b at KME A: 401 on stderr" '401' "$(cat "$ERR")"
kc A status nobody >/dev/null; rcis "status nobody (400)" 1 $?
kc B dec sae-a 00000000-0000-4000-8000-000000000000 >/dev/null; rcis "dec of an unknown ID" 1 $?

# --- transport and TLS: exit 3 ---
kc NONE --url https://127.0.0.1:1 --cert "$SAE_A_CERT" --key "$SAE_A_KEY" --ca "$CA" status sae-b >/dev/null
rcis "closed port" 3 $?
check "closed port: something on stderr" true "$([ -s "$ERR" ] && echo true || echo false)"
out=$(kc NONE --url "$KME_A_URL" --cert "$ROGUE_CERT" --key "$ROGUE_KEY" --ca "$CA" enc sae-b); rc=$?
rcis "rogue client certificate" 3 $rc
check "rogue client certificate: no keys on stdout" "" "$out"
out=$(kc NONE --url "$KME_A_URL" --ca "$CA" enc sae-b); rc=$?
rcis "no client certificate" 3 $rc
check "no client certificate: no keys on stdout" "" "$out"
kc NONE --url "$KME_A_URL" --cert "$SAE_A_CERT" --key "$SAE_A_KEY" --ca "$PKI/rogue-ca.crt" status sae-b >/dev/null
rcis "server not signed by --ca" 3 $?
kc NONE --url "https://localhost.invalid:${KME_A_URL##*:}" --cert "$SAE_A_CERT" --key "$SAE_A_KEY" --ca "$CA" status sae-b >/dev/null
rcis "host name that does not resolve" 3 $?
kc NONE --url "$KME_A_URL" --cert "$TB/missing.crt" --key "$SAE_A_KEY" --ca "$CA" status sae-b >/dev/null
rc=$?
check_match "missing certificate file: exit 2 or 3" '^[23]$' "$rc"
# timeout: freeze KME A, ask with --timeout 700
apid=$(cat "$TB/kme-a.pid")
kill -STOP "$apid"
t0=$(date +%s)
kc A --timeout 700 status sae-b >/dev/null; rc=$?
t1=$(date +%s)
kill -CONT "$apid"
rcis "frozen KME with --timeout 700" 3 $rc
check "frozen KME: gave up within 3 s" true "$([ $((t1 - t0)) -le 3 ] && echo true || echo false)"
kc A status sae-b >/dev/null; rcis "KME thawed: status works" 0 $?

# --- plain HTTP: refused unless --insecure-http ---
# A static plain-HTTP server with a valid Status body; its access log tells
# whether kmsclient sent anything at all.
mkdir -p "$TB/www/api/v1/keys/sae-b"
printf '%s' "$(http_body "$(sae_curl A "$KME_A_URL/api/v1/keys/sae-b/status")")" >"$TB/www/api/v1/keys/sae-b/status"
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$TB/www" >"$TB/www.log" 2>&1 &
wpid=$!
i=0; wport=""
while [ -z "$wport" ] && [ $i -lt 100 ]; do
	wport=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$TB/www.log" | head -n 1)
	sleep 0.05; i=$((i + 1))
done
check_match "plain HTTP test server is up" '^[0-9]+$' "$wport"
out=$(kc NONE --url "http://127.0.0.1:$wport" status sae-b); rc=$?
rcis "http:// URL without --insecure-http" 2 $rc
check_match "http:// refused: says why and how" 'is plain HTTP: keys would travel in clear; use https://, or --insecure-http' "$(cat "$ERR")"
check "http:// refused: nothing printed" "" "$out"
check "http:// refused: no request reached the server" 0 "$(grep -c 'GET /' "$TB/www.log")"
out=$(env KMS_URL="http://127.0.0.1:$wport" "$KMSCLIENT" status sae-b 2>"$ERR"); rc=$?
rcis "http:// from KMS_URL without --insecure-http" 2 $rc
out=$(kc NONE --insecure-http --url "http://127.0.0.1:$wport" status sae-b); rc=$?
rcis "http:// with --insecure-http" 0 $rc
check_match "http:// with --insecure-http: status printed" '^source_KME_ID +kme-a' "$out"
check "http:// with --insecure-http: one request at the server" 1 "$(grep -c 'GET /api/v1/keys/sae-b/status' "$TB/www.log")"
kill "$wpid"; wait "$wpid" 2>/dev/null

no_crash
