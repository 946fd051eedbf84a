#!/bin/sh
# qkd-sim against hostile traffic: idle and half-open connections, plain
# HTTP and random bytes on the TLS ports, a valid SAE certificate and
# garbage on the QKD link port, oversized headers and query strings, long
# SAE IDs, bursts of parallel connections. Afterwards the KMEs are alive,
# the QKD link was not disturbed and A and B still agree on every key.
. "$(dirname "$0")/lib.sh"
NO_KMSD=1; export NO_KMSD	# the KMEs alone: no kmsd pool drawing keys
tb_up

PKI=$(dirname "$CA")
API_A=${KME_A_URL##*:}
LINK_A=$(sed -n 's/^link_port=//p' "$TB/kme-a.ready")
roundtrip() {	# NAME
	r=$(enc A "$KME_A_URL" sae-b '{"number":13}')
	[ "$(http_code "$r")" = 200 ] || { nok "$1: enc_keys: $(http_code "$r") $(http_body "$r")"; return; }
	c=$(http_body "$r")
	r=$(dec B "$KME_B_URL" sae-a "$(idsbody "$c")")
	same "$1" "$(pairs "$c")" "$(pairs "$(http_body "$r")")"
}
# raw PORT SECONDS: a TCP connection that sends stdin, held open SECONDS
raw() { curl -s --max-time "$2" "telnet://127.0.0.1:$1" >/dev/null 2>&1; }

roundtrip "before: keys equal at A and B"

# --- 60 idle TCP connections (no TLS handshake) ---
i=0
while [ $i -lt 60 ]; do sleep 4 | raw "$API_A" 4 & i=$((i + 1)); done
sleep 1
t0=$(date +%s)
r=$(sae_curl A --max-time 5 "$KME_A_URL/api/v1/keys/sae-b/status")
t1=$(date +%s)
check "60 idle connections open: status still served" 200 "$(http_code "$r")"
check "60 idle connections open: within 3 s" true "$([ $((t1 - t0)) -le 3 ] && echo true || echo false)"
roundtrip "60 idle connections open: keys equal at A and B"
wait

# --- 300 idle TCP connections from another address (127.0.0.2) ---
# Nobody without a certificate may lock the SAEs out: a client at another
# address opening more connections than the server's limit (256) and
# sending nothing must not stop sae-a (127.0.0.1) from being served.
rm -f "$TB/hold"; mkfifo "$TB/hold"
exec 9<>"$TB/hold"		# a writer that never writes: the clients stay idle
pids=""; i=0
while [ $i -lt 300 ]; do
	curl -s --max-time 30 --interface 127.0.0.2 "telnet://127.0.0.1:$API_A" \
		<"$TB/hold" >/dev/null 2>&1 &
	pids="$pids $!"; i=$((i + 1))
done
sleep 2
n=$(ss -Htn state established "( dport = :$API_A )" 2>/dev/null | grep -c '127\.0\.0\.2:')
echo "# $n idle connections from 127.0.0.2 established"
t0=$(date +%s)
r=$(sae_curl A --max-time 5 "$KME_A_URL/api/v1/keys/sae-b/status")
t1=$(date +%s)
check "300 idle connections from 127.0.0.2: sae-a still served" 200 "$(http_code "$r")"
check "300 idle connections from 127.0.0.2: within 3 s" true "$([ $((t1 - t0)) -le 3 ] && echo true || echo false)"
for p in $pids; do	# only our own curl children still running
	[ "$(cut -d' ' -f2,4 "/proc/$p/stat" 2>/dev/null)" = "(curl) $$" ] && kill "$p" 2>/dev/null
done
wait
exec 9>&-

# --- plain HTTP and random bytes on the HTTPS port ---
r=$(curl -s --max-time 5 -w '\n%{http_code}' "http://127.0.0.1:$API_A/api/v1/keys/sae-b/status"); rc=$?
# curl 52: connected, then closed without a reply (not 7: nothing listening);
# the status check below shows the KME is still up.
check "plain HTTP to the HTTPS port: closed without an HTTP answer" 52/000 "$rc/$(http_code "$r")"
head -c 65536 /dev/urandom | raw "$API_A" 3
printf '\026\003\001\377\377' | raw "$API_A" 3		# TLS record header claiming 64 KiB
printf '\026\003\003\000\060\001\000\377\377' | raw "$API_A" 3	# ClientHello, bogus length
r=$(sae_curl A "$KME_A_URL/api/v1/keys/sae-b/status")
check "after garbage on the API port: status 200" 200 "$(http_code "$r")"

# --- the QKD link port: garbage, plain TCP, an SAE's certificate ---
head -c 65536 /dev/urandom | raw "$LINK_A" 3
printf 'GET / HTTP/1.0\r\n\r\n' | raw "$LINK_A" 3
sleep 3 | raw "$LINK_A" 3 &
n0=$(grep -c . "$TB/kme-a.log")
head -c 4096 /dev/urandom | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$LINK_A" \
	-cert "$SAE_A_CERT" -key "$SAE_A_KEY" -CAfile "$CA" >/dev/null 2>&1
head -c 4096 /dev/urandom | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$LINK_A" \
	-cert "$ROGUE_CERT" -key "$ROGUE_KEY" -CAfile "$CA" >/dev/null 2>&1
head -c 4096 /dev/urandom | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$LINK_A" \
	-CAfile "$CA" >/dev/null 2>&1
wait
check "KME A logged the foreign link connections" true \
	"$([ "$(grep -c . "$TB/kme-a.log")" -gt "$n0" ] && echo true || echo false)"
check "the real QKD link stayed up (no 'down' after the intruders)" "" \
	"$(sed -n "$((n0 + 1)),\$p" "$TB/kme-a.log" | grep -i 'link.*down')"
roundtrip "after intruders on the link port: keys equal at A and B"

# --- oversized requests ---
big=$(head -c 60000 /dev/zero | tr '\0' 'a')
# The KME answers 431 after reading part of the header and closes with the
# rest unread, so the kernel may reset the connection before curl reads the
# 431 (no status, 000): a race, not a crash. Retry a few times: the KME must
# answer at least once, and 000 every time is a failure.
i=0
while [ $i -lt 5 ]; do
	r=$(sae_curl A -H "X-Big: $big" "$KME_A_URL/api/v1/keys/sae-b/status")
	[ "$(http_code "$r")" != 000 ] && break
	i=$((i + 1))
done
check_match "60 KB header: refused or served ($((i + 1)) tries)" '^(200|400|413|431)$' "$(http_code "$r")"
q=$(awk 'BEGIN { printf "number=1"; for (i = 0; i < 300; i++) printf "&p%d=1", i }')
r=$(sae_curl A "$KME_A_URL/api/v1/keys/sae-b/enc_keys?$q")
check "enc_keys with 301 query parameters: 400" 400 "$(http_code "$r")"
# From ~500 parameters on, libmicrohttpd runs out of its per-connection
# memory pool while it parses them, before our handler runs, and closes the
# connection without an answer (curl 52). Assert exactly that, and that the
# KME still serves: any other outcome (a crash: 7 next time) fails.
q=$(awk 'BEGIN { printf "number=1"; for (i = 0; i < 1000; i++) printf "&p%d=1", i }')
r=$(sae_curl A "$KME_A_URL/api/v1/keys/sae-b/enc_keys?$q"); rc=$?
check "enc_keys with 1001 query parameters: closed without an answer" 52/000 "$rc/$(http_code "$r")"
r=$(sae_curl A "$KME_A_URL/api/v1/keys/sae-b/status")
check "after 1001 query parameters: status 200" 200 "$(http_code "$r")"
id128=$(head -c 128 /dev/zero | tr '\0' 's')
r=$(sae_curl A "$KME_A_URL/api/v1/keys/$id128/status")
check "status for a 128-character SAE ID (not attached): 400" 400 "$(http_code "$r")"
r=$(sae_curl A "$KME_A_URL/api/v1/keys/${id128}s/status")
check "status for a 129-character SAE ID: 404" 404 "$(http_code "$r")"
r=$(sae_curl A "$KME_A_URL/api/v1/keys/$(head -c 5000 /dev/zero | tr '\0' 's')/enc_keys")
check_match "5000-character SAE ID: 404 (or 414)" '^(404|414)$' "$(http_code "$r")"
r=$(sae_curl A "$KME_A_URL/api/v1/keys/sae-b%00x/status")
check_match "NUL byte in the SAE ID: 400 or 404" '^(400|404)$' "$(http_code "$r")"
r=$(sae_curl A "$KME_A_URL/api/v1/keys/%E2%82%AC/status")
check_match "non-ASCII SAE ID: 400 or 404" '^(400|404)$' "$(http_code "$r")"

# --- a burst of 100 parallel connections ---
W=$TB/burst; mkdir -p "$W"
i=0
while [ $i -lt 100 ]; do
	( r=$(enc A "$KME_A_URL" sae-b '{"number":2}'); printf '%s\n' "$r" >"$W/$i" ) &
	i=$((i + 1))
done
wait
check "burst of 100 parallel enc_keys: all 200" "" \
	"$(for f in "$W"/*; do tail -n 1 "$f"; done | grep -vx 200 | sort | uniq -c | tr '\n' ' ')"
for f in "$W"/*; do sed '$d' "$f"; done | jq -r '.keys[]? | "\(.key_ID) \(.key)"' | sort >"$W/all"
check "burst: 200 keys, no key ID twice" "200 200" \
	"$(grep -c . "$W/all") $(cut -d' ' -f1 "$W/all" | sort -u | grep -c .)"
split -l 100 "$W/all" "$W/chunk."
: >"$W/b"
for f in "$W"/chunk.*; do
	body=$(cut -d' ' -f1 "$f" | jq -R -s -c '{key_IDs: [split("\n")[] | select(. != "") | {key_ID: .}]}')
	pairs "$(http_body "$(dec B "$KME_B_URL" sae-a "$body")")" >>"$W/b"
done
same "burst: every key equal at B" "$(cat "$W/all")" "$(sort "$W/b")"

# --- idle connections on the link port must not keep the QKD link down ---
# Three clients keep opening TCP connections to A's link port and send
# nothing, while B is restarted: B must get its link within 8 s anyway.
sh "$top/tests/testbed.sh" kill b "$TB"
end=$(($(date +%s) + 14))
for k in 1 2 3; do
	( while [ ! -f "$TB/siege.stop" ] && [ "$(date +%s)" -lt $end ]; do
		sleep 6 | raw "$LINK_A" 6; done ) &
done
sleep 0.5
sh "$top/tests/testbed.sh" start b "$TB"
t0=$(date +%s)
while :; do
	code=$(http_code "$(enc A "$KME_A_URL" sae-b '{"number":1}')")
	[ "$code" = 200 ] && break
	[ $(($(date +%s) - t0)) -ge 8 ] && break
	sleep 0.2
done
t1=$(date +%s)
check "idle TCP clients on the link port: B's link up within 8 s anyway (took $((t1 - t0)) s)" 200 "$code"
touch "$TB/siege.stop"
wait
i=0
while [ $i -lt 50 ] && [ "$(http_code "$(enc A "$KME_A_URL" sae-b '{"number":1}')")" != 200 ]; do
	sleep 0.2; i=$((i + 1))
done
roundtrip "after the link-port siege: keys equal at A and B"

roundtrip "after all of it: keys equal at A and B"
no_crash
