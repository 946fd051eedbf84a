#!/bin/sh
# kmsd operations: --help, --check-config (names the line and the bad value,
# or the missing setting), flags over the file, /healthz and /metrics
# (Prometheus text, request counters by code), SIGHUP reloading the ACL (and
# keeping the old config when the new file is bad), SIGTERM stopping cleanly.
. "$(dirname "$0")/lib.sh"
POOL_LOW=50; POOL_HIGH=200; export POOL_LOW POOL_HIGH
tb_up

KMSD=$BINDIR/kmsd
metric() { curl -s "$1/metrics" | awk -v m="$2" '$1 == m { print $2; exit }'; }
# wait_code CODE SECONDS CMD...: rerun the sae_curl CMD until it answers CODE.
wait_code() {
	want=$1; n=$(($2 * 10)); shift 2
	i=0
	while :; do
		r=$("$@"); [ "$(http_code "$r")" = "$want" ] && break
		i=$((i + 1)); [ $i -lt $n ] || break
		sleep 0.1
	done
	printf '%s' "$r"
}

# --- kmsd B's view of its KME right after start ---
# kmsd B has no pool, so nothing calls KME B until a local SAE does; KME B
# is up and reachable all the same.
i=0
while [ "$(curl -s "$KMSD_B_OPS/healthz" | jq -r .upstream)" != reachable ] && [ $i -lt 30 ]; do
	sleep 0.1; i=$((i + 1))
done
r=$(curl -s -w '\n%{http_code}' "$KMSD_B_OPS/healthz")
check "kmsd B /healthz before any request (KME B is up): reachable/ok, 200" "kmsd-b/reachable/ok/200" \
	"$(json_get "$(http_body "$r")" '"\(.id)/\(.upstream)/\(.status)"')/$(http_code "$r")"
check "kmsd B /healthz: no pools" 0 "$(json_get "$(http_body "$r")" '.pools | length')"

# --- --help ---
out=$("$KMSD" --help 2>&1); rc=$?
check "kmsd --help: exit 0" 0 "$rc"
for o in --config --check-config --listen --upstream --pool-low --pool-high --pool-ttl-s --metrics-listen --log-level; do
	check_match "kmsd --help lists $o" "$o" "$out"
done
out=$("$KMSD" -h 2>&1); check "kmsd -h: exit 0" 0 "$?"
"$KMSD" --no-such-flag >"$TB/nf.out" 2>&1; rc=$?
check "kmsd --no-such-flag: non-zero exit" true "$(yes_no [ $rc -ne 0 ])"

# --- --check-config ---
cp "$TB/kmsd-a.conf" "$TB/good.conf"
out=$("$KMSD" --check-config "$TB/good.conf" 2>&1); rc=$?
check "--check-config on the testbed's config: exit 0" 0 "$rc"
check_match "--check-config on a good file says valid" valid "$out"
# bad VALUE in the middle of the file (not the last line)
sed 's/^low = .*/low = 12x/' "$TB/kmsd-a.conf" >"$TB/bad.conf"
ln=$(grep -n '^low = 12x' "$TB/bad.conf" | cut -d: -f1)
out=$("$KMSD" --check-config "$TB/bad.conf" 2>&1); rc=$?
check "--check-config low = 12x: non-zero exit" true "$(yes_no [ $rc -ne 0 ])"
check_match "--check-config low = 12x: names line $ln" "line $ln([^0-9]|\$)" "$out"
check_match "--check-config low = 12x: names the value 12x" '12x' "$out"
check_match "--check-config low = 12x: names the setting" 'low' "$out"
# the same as the last line of the file
{ cat "$TB/kmsd-a.conf"; echo "[pool]"; echo "high = -5"; } >"$TB/bad2.conf"
ln=$(grep -c '' "$TB/bad2.conf")
out=$("$KMSD" --check-config "$TB/bad2.conf" 2>&1); rc=$?
check "--check-config high = -5 on the last line: non-zero exit" true "$(yes_no [ $rc -ne 0 ])"
check_match "--check-config high = -5: names line $ln and the value" "line $ln[^0-9].*-5" "$out"
sed 's/^mode = .*/mode = quantum/' "$TB/kmsd-a.conf" >"$TB/bad3.conf"
out=$("$KMSD" --check-config "$TB/bad3.conf" 2>&1)
check_match "--check-config mode = quantum: names the value" quantum "$out"
sed 's/^ttl_s = .*/ttl_s = 3600\nfrobnicate = 1/' "$TB/kmsd-a.conf" >"$TB/bad4.conf"
out=$("$KMSD" --check-config "$TB/bad4.conf" 2>&1); rc=$?
check "--check-config unknown setting: non-zero exit" true "$(yes_no [ $rc -ne 0 ])"
check_match "--check-config unknown setting: names it" frobnicate "$out"
grep -v '^db = ' "$TB/kmsd-a.conf" >"$TB/nodb.conf"
out=$("$KMSD" --check-config "$TB/nodb.conf" 2>&1); rc=$?
check "--check-config without db: non-zero exit" true "$(yes_no [ $rc -ne 0 ])"
check_match "--check-config without db: names db" 'db' "$out"
awk '/^\[sae /{ s = 1 } !(s && /^cert = /)' "$TB/kmsd-a.conf" >"$TB/nosaecert.conf"
out=$("$KMSD" --check-config "$TB/nosaecert.conf" 2>&1); rc=$?
check "--check-config [sae sae-a] without cert: non-zero exit" true "$(yes_no [ $rc -ne 0 ])"
check_match "--check-config [sae sae-a] without cert: names the SAE and cert" 'sae-a.*cert|cert.*sae-a' "$out"
sed 's/^pool = .*/pool = sae-q/' "$TB/kmsd-a.conf" >"$TB/badpool.conf"
out=$("$KMSD" --check-config "$TB/badpool.conf" 2>&1); rc=$?
check "--check-config pool not among the peers: non-zero exit" true "$(yes_no [ $rc -ne 0 ])"
check_match "--check-config pool not among the peers: names it" 'sae-q' "$out"
out=$("$KMSD" --check-config "$TB/good.conf" --pool-low abc 2>&1); rc=$?
check "--check-config with a bad flag --pool-low abc: non-zero exit" true "$(yes_no [ $rc -ne 0 ])"
check_match "--check-config --pool-low abc: names the flag and the value" 'pool-low.*abc|abc.*pool-low' "$out"
out=$("$KMSD" --check-config "$TB/no-such-file.conf" 2>&1); rc=$?
check "--check-config on a missing file: non-zero exit, names it" "true/true" \
	"$(yes_no [ $rc -ne 0 ])/$(printf '%s' "$out" | grep -q no-such-file && echo true)"

# --- /metrics ---
m=$(curl -s -D "$TB/mhdr" "$KMSD_A_OPS/metrics")
check_match "/metrics Content-Type is Prometheus text" 'text/plain' "$(grep -i '^content-type' "$TB/mhdr")"
printf '%s\n' "$m" >"$TB/metrics.txt"
bad=$(grep -v '^#' "$TB/metrics.txt" | grep . |
	grep -vE '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? [-+]?([0-9.]+([eE][-+]?[0-9]+)?|\+Inf|NaN)$' | head -n 3)
check "/metrics: every sample line is NAME{labels} VALUE" "" "$bad"
# every sample's metric (histogram parts folded into the family) has a TYPE
notype=$(awk '
	/^# TYPE / { type[$3] = $4; next }
	/^#/ || /^$/ { next }
	{
		n = $1; sub(/\{.*/, "", n); f = n
		if (!(f in type)) { sub(/_(bucket|sum|count)$/, "", f); if (type[f] != "histogram") f = n }
		if (!(f in type)) print n
	}' "$TB/metrics.txt" | sort -u | head -n 5)
check "/metrics: every sample's metric has a # TYPE" "" "$notype"
check "/metrics: no metric has two # TYPE lines" "" "$(grep '^# TYPE' "$TB/metrics.txt" | awk '{ print $3 }' | sort | uniq -d)"
for n in kmsd_requests_total kmsd_keys_served_total kmsd_pool_keys kmsd_pool_requests_total \
    kmsd_upstream_requests_total kmsd_upstream_errors_total kmsd_upstream_up \
    kmsd_upstream_request_duration_seconds; do
	check_match "/metrics has $n" "^# TYPE $n " "$(grep "^# TYPE $n " "$TB/metrics.txt")"
done
check "/metrics: histogram +Inf bucket = _count" \
	"$(metric "$KMSD_A_OPS" 'kmsd_upstream_request_duration_seconds_count')" \
	"$(metric "$KMSD_A_OPS" 'kmsd_upstream_request_duration_seconds_bucket{le="+Inf"}')"
r=$(curl -s -w '\n%{http_code}' -X POST "$KMSD_A_OPS/metrics")
check "POST /metrics on the ops listener: 405" 405 "$(http_code "$r")"
r=$(curl -s -w '\n%{http_code}' "$KMSD_A_OPS/api/v1/keys/sae-b/enc_keys")
check "ETSI path on the plain-HTTP ops listener: 404, no keys" "404/null" \
	"$(http_code "$r")/$(json_get "$(http_body "$r")" .keys)"
r=$(sae_curl A "$KMSD_A_URL/metrics")
check "/metrics on the API port with an SAE's certificate: 401" 401 "$(http_code "$r")"
check_match "... no Prometheus text" '^[^#]*$' "$(http_body "$r")"
PROM="--cert $(dirname "$CA")/prometheus.crt --key $(dirname "$CA")/prometheus.key"
# shellcheck disable=SC2086
r=$(sae_curl NONE $PROM "$KMSD_A_URL/metrics")
check "/metrics on the API port as metrics_sae (prometheus): 200" 200 "$(http_code "$r")"
check_match "... the same Prometheus text" '# TYPE kmsd_requests_total counter' "$(http_body "$r")"
r=$(sae_curl A "$KMSD_A_URL/healthz")
check "/healthz on the API port with an SAE's certificate: 401" 401 "$(http_code "$r")"
# shellcheck disable=SC2086
r=$(sae_curl NONE $PROM "$KMSD_A_URL/healthz")
check "/healthz on the API port as metrics_sae: 200, kmsd-a" "200/kmsd-a" "$(http_code "$r")/$(json_get "$(http_body "$r")" .id)"

# kmsd_requests_total by endpoint and code
RQ='kmsd_requests_total{endpoint="%s",code="%s"}'
snap() { curl -s "$KMSD_A_OPS/metrics" >"$TB/m.$1"; }
val() { awk -v m="$(printf "$RQ" "$2" "$3")" '$1 == m { print $2 }' "$TB/m.$1"; }
delta() { echo $(($(val after "$1" "$2") - $(val before "$1" "$2"))); }
snap before
enc A "$KMSD_A_URL" sae-b '{"number":13}' >/dev/null
enc A "$KMSD_A_URL" sae-b '{"number":2,"size":512}' >/dev/null
enc A "$KMSD_A_URL" sae-b '{"number":1,"size":250}' >/dev/null
enc A "$KMSD_A_URL" sae-b '{"number":' >/dev/null
enc A "$KMSD_A_URL" sae-z '{"number":1}' >/dev/null
sae_curl A "$KMSD_A_URL/api/v1/keys/sae-b/status" >/dev/null
sae_curl A "$KMSD_A_URL/api/v1/keys/sae-b/nothing" >/dev/null
dec A "$KMSD_A_URL" sae-b '{"key_IDs":[]}' >/dev/null
snap after
check "kmsd_requests_total enc_keys 200 +2" 2 "$(delta enc_keys 200)"
check "kmsd_requests_total enc_keys 400 +2" 2 "$(delta enc_keys 400)"
check "kmsd_requests_total enc_keys 401 +1" 1 "$(delta enc_keys 401)"
check "kmsd_requests_total status 200 +1" 1 "$(delta status 200)"
check "kmsd_requests_total other 404 +1" 1 "$(delta other 404)"
check "kmsd_requests_total dec_keys 400 +1" 1 "$(delta dec_keys 400)"
check "kmsd_requests_total enc_keys 503 unchanged" 0 "$(delta enc_keys 503)"
k0=$(awk '$1 == "kmsd_keys_served_total{endpoint=\"enc_keys\"}" { print $2 }' "$TB/m.before")
k1=$(awk '$1 == "kmsd_keys_served_total{endpoint=\"enc_keys\"}" { print $2 }' "$TB/m.after")
check "kmsd_keys_served_total enc_keys +15" 15 "$((k1 - k0))"

# --- SIGHUP: a new ACL ---
r=$(enc A "$KMSD_A_URL" sae-x '{"number":1}')
check "before SIGHUP: sae-a may request keys for sae-x" 200 "$(http_code "$r")"
pid=$(cat "$TB/kmsd-a.pid")
sed 's/^peers = .*/peers = sae-b/' "$TB/kmsd-a.conf" >"$TB/new.conf" && cat "$TB/new.conf" >"$TB/kmsd-a.conf"
kill -HUP "$pid"
r=$(wait_code 401 3 enc A "$KMSD_A_URL" sae-x '{"number":1}')
check "after SIGHUP without sae-x in the peers: enc_keys for sae-x 401" 401 "$(http_code "$r")"
check_match "... the message names sae-x" 'sae-x' "$(json_get "$(http_body "$r")" .message)"
r=$(sae_curl A "$KMSD_A_URL/api/v1/keys/sae-x/status")
check "after SIGHUP: status for sae-x 401" 401 "$(http_code "$r")"
r=$(enc A "$KMSD_A_URL" sae-b '{"number":13}')
check "after SIGHUP: enc_keys for sae-b (pooled) still 200" 200 "$(http_code "$r")"
c=$(http_body "$r")
r=$(dec B "$KMSD_B_URL" sae-a "$(printf '%s' "$c" | jq -c '{key_IDs: [.keys[] | {key_ID}]}')")
check "after SIGHUP: those keys identical at B" \
	"$(printf '%s' "$c" | jq -r '.keys[] | "\(.key_ID) \(.key)"' | sort)" \
	"$(http_body "$r" | jq -r '.keys[] | "\(.key_ID) \(.key)"' | sort)"
check "after SIGHUP: same process" "$pid" "$(cat "$TB/kmsd-a.pid")"
check "after SIGHUP: still running" true "$(yes_no kill -0 "$pid")"
check_match "SIGHUP reload is logged" 'SIGHUP.*reloaded' "$(grep -a SIGHUP "$TB/kmsd-a.log")"
check "after SIGHUP every log line still names kmsd-a (no garbage prefix)" "" \
	"$(grep -av '^[0-9TZ:.-]* kmsd-a ' "$TB/kmsd-a.log" | head -n 2 | cat -v)"

# --- SIGHUP with a broken file: the running config stays ---
# The broken file would give sae-x back; nothing of it may be applied.
sed 's/^peers = .*/peers = sae-b, sae-x/; s/^low = .*/low = 12x/' "$TB/kmsd-a.conf" >"$TB/new.conf" &&
	cat "$TB/new.conf" >"$TB/kmsd-a.conf"
n0=$(grep -ac 'SIGHUP' "$TB/kmsd-a.log")
kill -HUP "$pid"
i=0
while [ "$(grep -ac 'SIGHUP' "$TB/kmsd-a.log")" -le "$n0" ] && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
check "SIGHUP with a broken file: still running" true "$(yes_no kill -0 "$pid")"
err=$(grep -a SIGHUP "$TB/kmsd-a.log" | tail -n 1 | cat -v)
check_match "SIGHUP with a broken file: an error is logged" 'error|not reloaded' "$err"
check_match "SIGHUP with a broken file: the log names the bad value" '12x' "$err"
r=$(enc A "$KMSD_A_URL" sae-x '{"number":1}')
check "SIGHUP with a broken file: the old ACL stays (sae-x 401)" 401 "$(http_code "$r")"
r=$(enc A "$KMSD_A_URL" sae-b '{"number":13}')
check "SIGHUP with a broken file: sae-b still served" 200 "$(http_code "$r")"
r=$(curl -s "$KMSD_A_OPS/healthz")
check "SIGHUP with a broken file: pool watermarks unchanged" "50/200" "$(json_get "$r" '"\(.pools[0].low)/\(.pools[0].high)"')"
# and a good file afterwards is taken
sed 's/^low = .*/low = 50/' "$TB/kmsd-a.conf" >"$TB/new.conf" && cat "$TB/new.conf" >"$TB/kmsd-a.conf"
kill -HUP "$pid"
r=$(wait_code 200 3 enc A "$KMSD_A_URL" sae-x '{"number":1}')
check "SIGHUP with the file fixed: sae-x allowed again" 200 "$(http_code "$r")"

# --- flags over the file, and SIGTERM, on a kmsd of our own ---
sed -e 's/^listen = .*/listen = 127.0.0.1:0/' -e 's/^metrics_listen = .*/metrics_listen = 127.0.0.1:0/' \
    -e 's/^id = .*/id = kmsd-c/' -e "s|^db = .*|db = $TB/kmsd-c.db|" \
    -e "s|^kek_file = .*|kek_file = $TB/kmsd-c.kek|" "$TB/kmsd-a.conf" >"$TB/kmsd-c.conf"
"$KMSD" --config "$TB/kmsd-c.conf" --ready-file "$TB/kmsd-c.ready" --pool-low 20 --pool-high 60 \
	>"$TB/kmsd-c.log" 2>&1 &
cpid=$!
i=0
while [ ! -s "$TB/kmsd-c.ready" ] && kill -0 $cpid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "own kmsd started" true "$(yes_no [ -s "$TB/kmsd-c.ready" ])"
cops=http://127.0.0.1:$(sed -n 's/^metrics_port=//p' "$TB/kmsd-c.ready")
capi=https://127.0.0.1:$(sed -n 's/^api_port=//p' "$TB/kmsd-c.ready")
check "ready file pid" "$cpid" "$(sed -n 's/^pid=//p' "$TB/kmsd-c.ready")"
i=0
while [ "$(curl -s "$cops/healthz" | jq -r '.pools[0].keys')" -lt 20 ] 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
h=$(curl -s "$cops/healthz")
check "flags override the file: id, watermarks 20/60" "kmsd-c/20/60" \
	"$(json_get "$h" '"\(.id)/\(.pools[0].low)/\(.pools[0].high)"')"
k=$(json_get "$h" '.pools[0].keys')
check "own kmsd's pool between 20 and 60 ($k)" true "$(yes_no [ "${k:-0}" -ge 20 ] && [ "${k:-0}" -le 60 ])"
r=$(enc A "$capi" sae-b '{"number":13}')
check "own kmsd serves enc_keys" 200 "$(http_code "$r")"
# an idle keep-alive connection must not hold the shutdown up
( sae_curl A "$capi/api/v1/keys/sae-b/status" "$capi/api/v1/keys/sae-b/status" >/dev/null 2>&1 ) &
sleep 0.2
t0=$(date +%s%N)
kill -TERM $cpid
wait $cpid; rc=$?
t1=$(date +%s%N)
check "SIGTERM: exit status 0" 0 "$rc"
check "SIGTERM: gone within 2 s ($(((t1 - t0) / 1000000)) ms)" true "$(yes_no [ $(((t1 - t0) / 1000000)) -le 2000 ])"
check "SIGTERM: process gone" false "$(yes_no kill -0 $cpid 2>/dev/null)"
check_match "SIGTERM: logged" '[Tt]erminated|stopping' "$(tail -n 3 "$TB/kmsd-c.log")"
# SIGINT likewise, on the same database (restart after a clean stop)
rm -f "$TB/kmsd-c.ready"
"$KMSD" --config "$TB/kmsd-c.conf" --ready-file "$TB/kmsd-c.ready" >>"$TB/kmsd-c.log" 2>&1 &
cpid=$!
i=0
while [ ! -s "$TB/kmsd-c.ready" ] && kill -0 $cpid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "own kmsd restarts on its database after a clean stop" true "$(yes_no [ -s "$TB/kmsd-c.ready" ])"
kill -INT $cpid
wait $cpid; rc=$?
check "SIGINT: exit status 0" 0 "$rc"

kmsd_alive
kmsd_down_clean
