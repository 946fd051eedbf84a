# Shared by the integration tests: start a testbed in a temp dir, assertions
# that print "ok - ..." / "not ok - ..." (counted by tests/run.sh), cleanup.
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
BINDIR=${BINDIR:-bin}
case $BINDIR in /*) ;; *) BINDIR=$top/$BINDIR ;; esac
export BINDIR
TB=$(mktemp -d /tmp/qkd-testbed.XXXXXX)
KMSCLIENT=$BINDIR/kmsclient

tb_cleanup() {
	sh "$top/tests/testbed.sh" down "$TB" >/dev/null 2>&1
	if [ -n "${KEEP:-}" ]; then echo "# testbed kept in $TB"; else rm -rf "$TB"; fi
}
trap tb_cleanup EXIT INT TERM

tb_up() {
	if ! sh "$top/tests/testbed.sh" up "$TB" >"$TB/up.log" 2>&1; then
		echo "not ok - testbed up: $(tail -n 3 "$TB/up.log")"
		exit 1
	fi
	. "$TB/testbed.env"
}

ok()   { echo "ok - $*"; }
nok()  { echo "not ok - $*"; }
# skip REASON: a check that could not run. tests/run.sh lists and counts it
# apart and fails the run on any skip; a missing prerequisite is a nok.
skip() { echo "skip - $*"; }

# check NAME EXPECTED ACTUAL
check() {
	if [ "$2" = "$3" ]; then ok "$1"; else nok "$1: expected [$2], got [$3]"; fi
}

# check_match NAME REGEX ACTUAL
check_match() {
	if printf '%s' "$3" | grep -qE -- "$2"; then ok "$1"; else nok "$1: [$3] does not match /$2/"; fi
}

# wire_checks NAME PCAP WHERE: what a capture of the UE <-> N3IWF link may
# hold: ESP in UDP to port 4500 (a thousand frames at least), nothing but
# ARP, IKE and ESP-in-UDP (ports 500/4500), and never the plaintext
# marker $MARK of the transfer.
wire_checks() {
	_ts="tshark -r $2 -d udp.port==4500,udpencap"
	_n=$($_ts -Y 'esp && udp.dstport == 4500' 2>/dev/null | wc -l)
	check_match "$1: ESP in UDP 4500 on $3 ($_n frames)" '^[0-9]{4,}$' "$_n"
	check "$1: nothing but ARP, IKE and ESP-in-UDP (500/4500) on $3" "" \
	    "$($_ts -Y 'not arp and not (udp.port == 500 or udp.port == 4500)' 2>/dev/null | head -n 3)"
	check "$1: the plaintext marker is not on $3" 0 "$(grep -ac "$MARK" "$2")"
}

# tunnel_test_init TAG TOOL...: for the tests on tests/testbed.sh --tunnel:
# TBT (a temp dir, removed at exit with the testbed in it), TB_SH; every
# TOOL on PATH (or an executable path) and root, else a nok and exit 1.
tunnel_test_init() {
	TBT=$(mktemp -d "/tmp/qkd-$1.XXXXXX")
	TB_SH=$top/tests/testbed.sh
	trap 'sh "$TB_SH" down "$TBT" >/dev/null 2>&1; rm -rf "$TBT"; tb_cleanup' EXIT INT TERM
	shift
	for b in "$@"; do
		command -v "$b" >/dev/null 2>&1 || { nok "missing prerequisite: $b (mk/deps.sh, make)"; exit 1; }
	done
	[ "$(id -u)" = 0 ] || { nok "needs root (network namespaces)"; exit 1; }
}

# nwu_capture: dumpcap on NWU_IFACE (in NWU_NETNS) into $TBT/nwu.pcap,
# started (its pid in dc; kill -INT "$dc"; wait "$dc" ends it).
nwu_capture() {
	ip netns exec "$NWU_NETNS" dumpcap -q -P -i "$NWU_IFACE" -w "$TBT/nwu.pcap" \
	    >"$TBT/dumpcap.log" 2>&1 &
	dc=$!
	_i=0
	while ! grep -q "Capturing on" "$TBT/dumpcap.log" 2>/dev/null && [ $_i -lt 100 ]; do
		sleep 0.05; _i=$((_i + 1))
	done
}

# curl as an SAE: sae_curl A|B|X|KA|KB|KX|ROGUE|NONE [curl args...]; prints
# body, then the HTTP status on the last line. KA, KB, KX: the certificates
# the KMEs know the SAEs by (kmsd's own, unless NO_KMSD=1).
sae_curl() {
	who=$1; shift
	case $who in
	A) set -- --cert "$SAE_A_CERT" --key "$SAE_A_KEY" "$@" ;;
	B) set -- --cert "$SAE_B_CERT" --key "$SAE_B_KEY" "$@" ;;
	X) set -- --cert "$SAE_X_CERT" --key "$SAE_X_KEY" "$@" ;;
	KA) set -- --cert "$KME_SAE_A_CERT" --key "$KME_SAE_A_KEY" "$@" ;;
	KB) set -- --cert "$KME_SAE_B_CERT" --key "$KME_SAE_B_KEY" "$@" ;;
	KX) set -- --cert "$KME_SAE_X_CERT" --key "$KME_SAE_X_KEY" "$@" ;;
	ROGUE) set -- --cert "$ROGUE_CERT" --key "$ROGUE_KEY" "$@" ;;
	NONE) ;;
	esac
	curl -s --max-time 10 --cacert "$CA" -w '\n%{http_code}' "$@"
}

# Status code and body of the last sae_curl output.
http_code() { printf '%s' "$1" | tail -n 1; }
http_body() { printf '%s' "$1" | sed '$d'; }
# tls_refused NAME CURL_EXIT SAE_CURL_OUTPUT: the server took the TCP
# connection and refused it in TLS: no HTTP status and a TLS or closed-
# connection curl error (35, 52, 55, 56); never "nothing listening" (7), a
# timeout (28) or success: status 000 alone would pass a dead server too.
tls_refused() {
	case $2/$(http_code "$3") in
	35/000 | 52/000 | 55/000 | 56/000) ok "$1" ;;
	*) nok "$1: expected a TLS refusal, got curl exit $2, HTTP status $(http_code "$3")" ;;
	esac
}

# json_get JSON FILTER: jq -r FILTER on JSON (empty on bad JSON).
json_get() {
	printf '%s' "$1" | jq -r "$2" 2>/dev/null
}

# --- ETSI 014 helpers shared by the KME and kmsd tests ---
JSON='Content-Type: application/json'
UUID_RE='^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
NOTFOUND='one or more keys specified are not found on KME'

enc() {	# WHO URL SLAVE BODY
	sae_curl "$1" -X POST -H "$JSON" --data-binary "$4" "$2/api/v1/keys/$3/enc_keys"
}
dec() {	# WHO URL MASTER BODY
	sae_curl "$1" -X POST -H "$JSON" --data-binary "$4" "$2/api/v1/keys/$3/dec_keys"
}
# "key_ID key" lines of a Key container, sorted.
pairs() { printf '%s' "$1" | jq -r '.keys[] | "\(.key_ID) \(.key)"' 2>/dev/null | sort; }
# Key IDs body for dec_keys with every key of a Key container.
idsbody() { printf '%s' "$1" | jq -c '{key_IDs: [.keys[] | {key_ID}]}' 2>/dev/null; }
# same NAME EXPECTED ACTUAL: multi-line equality, never of two empty texts.
same() {
	if [ -n "$2" ] && [ "$2" = "$3" ]; then ok "$1"; return; fi
	printf '%s\n' "$2" >"$TB/same.exp"; printf '%s\n' "$3" >"$TB/same.got"
	nok "$1: $(grep -c . "$TB/same.exp") lines expected, $(grep -c . "$TB/same.got") got, $(diff "$TB/same.exp" "$TB/same.got" | grep -c '^[<>]') differ"
}
# is_err NAME CODE CURL_OUTPUT [EXACT_MESSAGE]: status, Error body shape,
# message; and never a key in an error answer.
is_err() {
	b=$(http_body "$3")
	check "$1: $2" "$2" "$(http_code "$3")"
	check "$1: Error body" "string/ok/null" \
		"$(json_get "$b" '"\(.message | type)/\(if has("details") then (if (.details | type) == "array" then "ok" else "bad" end) else "ok" end)/\(.keys)"')"
	[ $# -ge 4 ] && check "$1: message" "$4" "$(json_get "$b" .message)"
	return 0
}
# dec_same NAME WHO URL MASTER CONTAINER [NAME200]: dec_keys of every key of
# the Key container CONTAINER; checks (NAME200) that the answer is 200 and
# (NAME) that its keys are CONTAINER's, bytes too. The answer stays in $r.
dec_same() {
	r=$(dec "$2" "$3" "$4" "$(idsbody "$5")")
	[ -z "${6:-}" ] || check "$6" 200 "$(http_code "$r")"
	same "$1" "$(pairs "$5")" "$(pairs "$(http_body "$r")")"
}
# no_crash: stop the pair with SIGTERM, then look for sanitizer reports.
no_crash() {
	for s in a b; do
		if [ -f "$TB/kme-$s.pid" ] && kill -0 "$(cat "$TB/kme-$s.pid")" 2>/dev/null; then
			ok "KME $s still running at the end"
		else
			nok "KME $s died during the test (see kme-$s.log)"
		fi
	done
	sh "$top/tests/testbed.sh" down "$TB"
	check "no sanitizer or crash report in the KME logs" "" "$(crash_reports "$TB"/kme-*.log)"
}
# crash_reports FILE...: the names of the files that hold a sanitizer or
# crash report (none: empty).
crash_reports() {
	grep -lE 'AddressSanitizer|LeakSanitizer|runtime error|Segmentation|Aborted' "$@"
}
# kmsd_alive: a check per site that its kmsd still runs.
kmsd_alive() {
	for s in a b; do
		check "kmsd $s still running" true "$(yes_no kill -0 "$(cat "$TB/kmsd-$s.pid")")"
	done
}
# kmsd_down_clean [LOG...]: stops the testbed, then checks that no kmsd log
# (nor LOG) holds a sanitizer or crash report.
kmsd_down_clean() {
	sh "$top/tests/testbed.sh" down "$TB"
	check "no sanitizer or crash report in the kmsd logs" "" "$(crash_reports "$TB"/kmsd-*.log "$@")"
}

# --- kmsd pool tests: keys served at A, checked at B ---
# served_pairs FILE...: "key_ID key" lines of every complete Key container in
# the files (answers may be concatenated, a last one truncated), sorted.
served_pairs() {
	for f in "$@"; do cat "$f"; echo; done | sed 's/}{/}\n{/g' |
		jq -R -r 'fromjson? | .keys[]? | "\(.key_ID) \(.key)"' 2>/dev/null | sort
}
# fetch_at_b IDFILE OUT: dec_keys at kmsd B (as sae-b, master sae-a) for the
# key IDs in IDFILE's first column, 100 per call on one keep-alive curl;
# "key_ID key" lines into OUT, sorted; prints the error messages, counted.
fetch_at_b() {
	awk -v w="$TB" -v url="$KMSD_B_URL/api/v1/keys/sae-a/dec_keys" -v ca="$CA" \
	    -v cert="$SAE_B_CERT" -v key="$SAE_B_KEY" '
		function flush() {
			if (body == "") return
			f = w "/fetch." n ".json"; n++
			printf "{\"key_IDs\":[%s]}", body >f; close(f)
			printf "url = \"%s\"\ncacert = \"%s\"\ncert = \"%s\"\nkey = \"%s\"\n", url, ca, cert, key >cfg
			printf "header = \"Content-Type: application/json\"\ndata-binary = \"@%s\"\nnext\n", f >cfg
			body = ""; k = 0
		}
		BEGIN { cfg = w "/fetch.cfg"; printf "" >cfg }
		{ body = body (k ? "," : "") "{\"key_ID\":\"" $1 "\"}"; if (++k == 100) flush() }
		END { flush() }' "$1"
	curl -s --max-time 120 -K "$TB/fetch.cfg" >"$TB/fetch.out" 2>/dev/null
	served_pairs "$TB/fetch.out" >"$2"
	sed 's/}{/}\n{/g' "$TB/fetch.out" | jq -R -r 'fromjson? | select(.message) | .message' 2>/dev/null |
		sort | uniq -c | head -n 3
	rm -f "$TB"/fetch.*
}

yes_no() { if "$@"; then echo true; else echo false; fi; }
poolkeys() { curl -s "$KMSD_A_OPS/healthz" | jq -r '.pools[0].keys'; }
# pool_wait_low: waits up to 10 s for kmsd A's pool to reach POOL_LOW; a check.
pool_wait_low() {
	i=0
	while [ "$(poolkeys)" -lt "$POOL_LOW" ] 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1; i=$((i + 1))
	done
	check "pool filled before the load (>= $POOL_LOW)" true \
		"$(yes_no [ "$(poolkeys)" -ge "$POOL_LOW" ])"
}
# enc_client N: until $W/stop exists, one curl of 5 enc_keys ($ENC, 13 keys
# each) on one connection as SAE A, raw answers into its own file per curl
# run (a run cut short by a kill or a stop leaves a truncated last answer;
# the complete ones still count).
enc_client() {
	n=0
	while [ ! -f "$W/stop" ]; do
		n=$((n + 1))
		curl -s --max-time 5 --cacert "$CA" --cert "$SAE_A_CERT" --key "$SAE_A_KEY" \
			-H "$JSON" --data-binary '{"number":13}' \
			"$ENC" "$ENC" "$ENC" "$ENC" "$ENC" >"$W/client.$1.$n.json" 2>/dev/null ||
			sleep 0.05
		sleep 0.01
	done
}
