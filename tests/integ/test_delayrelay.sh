#!/bin/sh
# The delay relay (tests/tools/delayrelay.c, issue 11) measured from
# outside: tests/tools/relayprobe.py runs UDP and TCP echo servers, puts
# the relay in front of them and times ping-pongs at the client
# (time.monotonic): the added RTT's median must be within
# [2 D, 2 D + RELAY_TOL_MS] of the configured one-way delay D, no round
# trip shorter than 2 D; with jitter, the RTTs' spread as the uniform
# distribution says; replies equal requests and the echo servers' SHA-256
# of what they received equals what was sent (4 MiB over TCP with jitter:
# order kept); two UDP clients at once each get only their own replies.
# Then the relay's refusals: each bad value named.
. "$(dirname "$0")/lib.sh"
BUILD=${BUILD:-build}
R=$top/$BUILD/tools/delayrelay
[ -x "$R" ] || { nok "delayrelay: $R not built (make)"; exit 1; }
command -v python3 >/dev/null 2>&1 || { nok "delayrelay: python3 not installed"; exit 1; }
# The probe and the relay run under SCHED_FIFO where allowed (root), as
# bench/ike/delays.sh runs: on the shared 2-core machine a load average of
# 15-20 otherwise delays wake-ups by several ms and the timing checks
# measure the scheduler, not the relay.
rt=""
chrt -f 10 true 2>/dev/null && rt="chrt -f 10"
echo "# timing under: ${rt:-the default scheduler (chrt -f 10 not permitted)}"
$rt python3 "$top/tests/tools/relayprobe.py" "$R"

# refuse LABEL EXPECTED_MESSAGE_REGEX ARGS...: exit status 1, message on stderr
refuse() {
	_l=$1; _m=$2; shift 2
	_out=$("$R" "$@" 2>&1 >/dev/null); _rc=$?
	check "delayrelay refuses $_l: exit 1" 1 "$_rc"
	check_match "delayrelay refuses $_l: message names it" "$_m" "$_out"
}
refuse "a delay that is not a number" '--delay "2ms": not a number' \
    -d 2ms -u 127.0.0.1:0=127.0.0.1:9
refuse "a negative jitter" '--jitter "-1": not a number' \
    -d 2 -j -1 -u 127.0.0.1:0=127.0.0.1:9
refuse "jitter above delay" '--jitter 3 is larger than --delay 2' \
    -d 2 -j 3 -u 127.0.0.1:0=127.0.0.1:9
refuse "a delay above 10 s" '--delay "10001"' -d 10001 -t 127.0.0.1:0=127.0.0.1:9
refuse "a listen address off loopback" '"0.0.0.0:0=127.0.0.1:9": listen address not on 127' \
    -u 0.0.0.0:0=127.0.0.1:9
refuse "a rule without =" '-t "127.0.0.1:5": not LISTEN=TARGET' -t 127.0.0.1:5
refuse "a bad port" '-u "127.0.0.1:0=127.0.0.1:70000"' -u 127.0.0.1:0=127.0.0.1:70000
refuse "no rule" 'no -u or -t rule' -d 1
refuse "a bad --udp-idle" '--udp-idle "0": not 1 to 86400' --udp-idle 0 -u 127.0.0.1:0=127.0.0.1:9
check_match "delayrelay --help lists -u and -t" '-u, --udp.*' "$("$R" --help | tr '\n' ' ')"
