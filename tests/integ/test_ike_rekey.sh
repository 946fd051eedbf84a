#!/bin/sh
# Rekeying (RFC 7296 1.3.2, 1.3.3, 2.8.1) with the real ike-ue and ike-n3iwf
# against the testbed's kmsd pair: the UE holds its IKE SA (--hold) with short
# lifetimes, in every mode and both profiles.
#   split     the UE's Child SA soft lifetime is short and the N3IWF's long,
#             the N3IWF's IKE SA soft lifetime short and the UE's long: the UE
#             starts the Child SA rekeys, the N3IWF the IKE SA rekeys; at least
#             10 Child SA and 2 IKE SA rekeys, counted on both sides, the same
#             new keys on both sides (SHA-256 fingerprints), the same Child
#             SAs in use when the UE deletes the IKE SA.
#   collide   both sides with the same lifetimes and no jitter: both start
#             rekeys at once; every collision resolves to one surviving SA per
#             pair, both sides naming the same redundant SA (psk: at least one
#             collision; qkd: the N3IWF's key draw usually lets the UE's
#             request in first, which is no collision, so none is required).
# qkd: counted at the key servers (kmsd A's and kmsd B's /metrics, not the
# IKE logs): kmsd A hands out 13 + 1 per rekey exchange (enc_keys), kmsd B
# 13 + 1 per rekey exchange (dec_keys), each key once: a key ID kmsd B
# served is deleted there, so every rekey's key is one never used before;
# the key IDs the UE logged are all distinct too.
. "$(dirname "$0")/lib.sh"
tb_up
N3_OPTS="--peer-sae sae-b --qkd-budget-src off --qkd-budget-sae off --qkd-budget-all off"
. "$(dirname "$0")/ike_lib.sh"
HOLD=${HOLD:-25}
N3PID=""
trap 'kill "$N3PID" 2>/dev/null; tb_cleanup' EXIT INT TERM

ue_hold() {	# MODE PROFILE [args]: exit code of ike-ue holding HOLD s
	m=$1; p=$2; shift 2
	timeout $((HOLD + 30)) "$UE" --mode "$m" --profile "$p" \
		--peer "127.0.0.1:$N3PORT" --log-level debug --psk test-psk-1 \
		--ca "$CA" --cert "$SAE_B_CERT" --key "$SAE_B_KEY" \
		--kmsd-url "$KMSD_B_URL" --kmsd-cert "$SAE_B_CERT" \
		--kmsd-key "$SAE_B_KEY" --kmsd-ca "$CA" --peer-sae sae-a \
		--hold "$HOLD" "$@" 2>"$TB/ue.log"
}
n3_stop() { kill -TERM "$N3PID"; wait "$N3PID"; N3RC=$?; N3PID=""; }
metric() { curl -s --max-time 10 "$1/metrics" | awk -v m="$2" '$1 == m { print $2; f = 1 } END { if (!f) print "?" }'; }
served() {	# OPS ENDPOINT: keys a kmsd handed out
	metric "$1" "kmsd_keys_served_total{endpoint=\"$2\"}"
}
cnt() { grep -c "$1" "$2"; }
fps() { grep -o '(rekeyed) keys sha256-fp=[0-9a-f]*' "$1" | sort; }
inuse() { sed -n 's/.*Child SA(s) in use:\([^;]*\);.*/\1/p' "$1" | tail -n 1; }
# rekeys_on LOG: the rekey stats line's counters as "child ike ours_c ours_i coll"
stats() { sed -n 's/.*rekey counters: child=\([0-9]*\) child_ours=\([0-9]*\) ike=\([0-9]*\) ike_ours=\([0-9]*\) collisions=\([0-9]*\).*/\1 \3 \2 \4 \5/p' "$1" | tail -n 1; }

common_checks() {	# TITLE MODE PROFILE UE_RC
	t=$1; nch=1; [ "$3" = nwu ] && nch=2
	check "$t: ike-ue exit code" 0 "$4"
	check "$t: ike-n3iwf exit code" 0 "$N3RC"
	a=$(fps "$TB/ue.log"); b=$(fps "$TB/n3.log")
	if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "$t: same rekeyed keys on both sides ($(printf '%s\n' "$a" | wc -l) SAs)"
	else nok "$t: rekeyed keys differ: UE [$a] N3IWF [$b]"; fi
	u=$(inuse "$TB/ue.log"); n=$(inuse "$TB/n3.log")
	check "$t: $nch Child SA(s) in use at the end" "$nch" "$(printf '%s' "$u" | wc -w)"
	check "$t: the same Child SAs in use on both sides" "$u" "$n"
	if grep -qiE 'sanitizer|runtime error' "$TB/ue.log" "$TB/n3.log"; then nok "$t: sanitizer report"; fi
	if grep -q 'hard lifetime reached' "$TB/ue.log" "$TB/n3.log"; then nok "$t: a hard lifetime was reached"; fi
}

# ts_checks TITLE PROFILE MIN_UE MIN_N3: the traffic selectors of the Child
# SA rekeys as the responder decoded them from the wire (its debug line
# "rekey request of Child SA ...: TSi A, TSr B") are those the Child SA got
# at IKE_AUTH / the first CREATE_CHILD_SA (RFC 7296 2.8), which both sides
# log alike ("Child SA n (...) traffic selectors: UE A, N3IWF B"); NWu: the
# signalling SA's are the UE's inner address <-> NAS_IP, not 0.0.0.0/0.
# MIN_UE / MIN_N3: rekey requests of the UE's / the N3IWF's at least.
ts_checks() {
	t=$1
	orig() { sed -n 's/.*Child SA [12] ([a-z ]*) traffic selectors: UE \(.*\), N3IWF \(.*\)$/\1 \2/p' "$1" | sort -u; }
	rx() { sed -n 's/.*rekey request of Child SA [0-9a-f/]*: TSi \(.*\), TSr \(.*\)$/\1 \2/p' "$1"; }
	ou=$(orig "$TB/ue.log"); on=$(orig "$TB/n3.log")
	[ -n "$on" ] && check "$t: the first selectors alike on both sides" "$on" "$ou" ||
		nok "$t: no Child SA selectors logged"
	if [ "$2" = nwu ]; then
		sig=$(sed -n 's/.*Child SA 1 (signalling) traffic selectors: UE \(.*\), N3IWF \(.*\)$/\1 \2/p' "$TB/n3.log" | tail -n 1)
		check "$t: signalling SA selectors: the UE's inner address <-> NAS_IP" \
			"10.60.0.2-10.60.0.2/0/0-65535 10.60.0.1-10.60.0.1/0/0-65535" "$sig"
	fi
	# The UE's requests, read by the N3IWF: TSi is the UE's side.
	n=$(rx "$TB/n3.log" | grep -c .)
	[ "$n" -ge "$3" ] && ok "$t: the N3IWF decoded the selectors of $n rekeys" ||
		nok "$t: rekey requests with selectors at the N3IWF: [$n] < $3"
	check "$t: every UE rekey request carries the Child SA's selectors" "" \
		"$(rx "$TB/n3.log" | sort -u | grep -vxF "$on")"
	# The N3IWF's requests, read by the UE: TSi is the N3IWF's side.
	n=$(rx "$TB/ue.log" | grep -c .)
	[ "$n" -ge "$4" ] && ok "$t: the UE decoded the selectors of $n rekeys" ||
		nok "$t: rekey requests with selectors at the UE: [$n] < $4"
	check "$t: every N3IWF rekey request carries the Child SA's selectors" "" \
		"$(rx "$TB/ue.log" | awk '{ print $2, $1 }' | sort -u | grep -vxF "$ou")"
	# ... and the new SAs keep them.
	check "$t: rekeyed Child SAs keep the selectors" "" \
		"$(sed -n 's/.*Child SA (rekeyed) traffic selectors: UE \(.*\), N3IWF \(.*\)$/\1 \2/p' \
			"$TB/ue.log" "$TB/n3.log" | sort -u | grep -vxF "$on")"
}

rkstat() { sed -n "s/.*rekey counters: .*$1=\\([0-9]*\\).*/\\1/p" "$2" | tail -n 1; }
# qkd_keys TITLE BEFORE_A BEFORE_B [collide]: keys taken at the servers vs
# the rekeys. kmsd A hands out what the N3IWF drew (13, then 1 per rekey
# exchange it drew for), kmsd B what the UE fetched (13, then 1 per rekey).
# Crossing exchanges may leave a drawn key unused (wiped): the N3IWF's IKE SA
# rekey refused by the UE with TEMPORARY_FAILURE because a Child SA rekey of
# the UE's is under way (2.25.2), or a request it drew for and must then
# refuse; a few, counted apart.
qkd_keys() {
	t=$1; x=$(rkstat qkd_keys "$TB/n3.log"); ux=$(rkstat qkd_keys "$TB/ue.log")
	dr=$(rkstat qkd_drawn "$TB/n3.log")
	da=$(($(served "$KMSD_A_OPS" enc_keys) - $2)); db=$(($(served "$KMSD_B_OPS" dec_keys) - $3))
	check "$t: rekey keys used, UE = N3IWF" "$x" "$ux"
	check "$t: kmsd A enc_keys served 13 + 1 per rekey key drawn" "$((13 + dr))" "$da"
	check "$t: kmsd B dec_keys served 13 + 1 per rekey" "$((13 + x))" "$db"
	[ "$dr" -ge "$x" ] && [ "$dr" -le $((x + 3)) ] && ok "$t: $dr drawn, $x used" ||
		nok "$t: drawn [$dr], used [$x]"
	ids=$(sed -n 's/.*rekey: fresh QKD key \([0-9a-f-]*\).*/\1/p' "$TB/ue.log")
	check "$t: distinct rekey key IDs" "$x" "$(printf '%s\n' "$ids" | sort -u | grep -c .)"
	[ "${x:-0}" -ge 12 ] && ok "$t: $x fresh QKD keys for rekeys" || nok "$t: only [$x] fresh QKD keys"
}

# ppk_keys TITLE A_ENC B_DEC A_DEC B_ENC (before): qkd+dh rekeys take a
# fresh DH and no QKD key (no RFC 9370 additional key exchange): across
# all the rekeys, kmsd B handed out the one PPK (enc_keys, the UE) and
# kmsd A served it (dec_keys, the N3IWF), nothing else.
ppk_keys() {
	check "$1: kmsd B enc_keys: the PPK only" 1 $(($(served "$KMSD_B_OPS" enc_keys) - $5))
	check "$1: kmsd A dec_keys: the PPK only" 1 $(($(served "$KMSD_A_OPS" dec_keys) - $4))
	check "$1: kmsd A enc_keys: none" 0 $(($(served "$KMSD_A_OPS" enc_keys) - $2))
	check "$1: kmsd B dec_keys: none" 0 $(($(served "$KMSD_B_OPS" dec_keys) - $3))
}

for mode in qkd qkd+dh psk cert; do
	for prof in nwu rfc7296; do
		t="$mode/$prof split"
		a0=$(served "$KMSD_A_OPS" enc_keys); b0=$(served "$KMSD_B_OPS" dec_keys)
		a1=$(served "$KMSD_A_OPS" dec_keys); b1=$(served "$KMSD_B_OPS" enc_keys)
		n3_start "$mode" "$prof" --child-soft 60 --ike-soft 5
		[ -n "$N3PORT" ] || { nok "$t: N3IWF did not start: $(tail -n 2 "$TB/n3.log")"; continue; }
		ue_hold "$mode" "$prof" --child-soft 2 --ike-soft 60
		rc=$?
		n3_stop
		common_checks "$t" "$mode" "$prof" "$rc"
		ts_checks "$t" "$prof" 10 0
		set -- $(stats "$TB/ue.log"); set -- "$@" $(stats "$TB/n3.log")
		# UE: child ike child_ours ike_ours coll | N3IWF: the same
		[ "${1:-0}" -ge 10 ] && ok "$t: $1 Child SA rekeys (UE)" || nok "$t: Child SA rekeys on the UE: [$1]"
		[ "${2:-0}" -ge 2 ] && ok "$t: $2 IKE SA rekeys (UE)" || nok "$t: IKE SA rekeys on the UE: [$2]"
		check "$t: Child SA rekeys, N3IWF = UE" "$1" "${6:-}"
		check "$t: IKE SA rekeys, N3IWF = UE" "$2" "${7:-}"
		check "$t: the UE started every Child SA rekey" "$1" "${3:-}"
		check "$t: the N3IWF started every IKE SA rekey" "$2" "${9:-}"
		[ "$mode" = qkd ] && qkd_keys "$t" "$a0" "$b0"
		[ "$mode" = qkd+dh ] && ppk_keys "$t" "$a0" "$b0" "$a1" "$b1"
	done
done

# Collisions: the same lifetimes on both sides, no jitter.
for mode in psk qkd; do
	prof=nwu; t="$mode/$prof collide"
	a0=$(served "$KMSD_A_OPS" enc_keys); b0=$(served "$KMSD_B_OPS" dec_keys)
	n3_start "$mode" "$prof" --child-soft 2 --ike-soft 5 --rekey-jitter 0
	[ -n "$N3PORT" ] || { nok "$t: N3IWF did not start"; continue; }
	ue_hold "$mode" "$prof" --child-soft 2 --ike-soft 5 --rekey-jitter 0
	rc=$?
	n3_stop
	common_checks "$t" "$mode" "$prof" "$rc"
	ts_checks "$t" "$prof" 1 1
	set -- $(stats "$TB/ue.log"); set -- "$@" $(stats "$TB/n3.log")
	[ "${1:-0}" -ge 10 ] && ok "$t: $1 Child SA rekeys" || nok "$t: Child SA rekeys: [$1]"
	[ "${2:-0}" -ge 2 ] && ok "$t: $2 IKE SA rekeys" || nok "$t: IKE SA rekeys: [$2]"
	[ "${3:-0}" -gt 0 ] && [ "${8:-0}" -gt 0 ] && ok "$t: both sides started Child SA rekeys ($3, $8)" ||
		nok "$t: Child SA rekeys started: UE [$3] N3IWF [$8]"
	check "$t: collisions seen alike on both sides" "$5" "${10:-}"
	# psk: both requests cross (each side's DH makes the window). qkd: the
	# N3IWF draws its key before it sends, so the UE's request usually comes
	# first and takes that key (no collision): collisions are not required.
	if [ "$mode" = qkd ]; then ok "$t: ${5:-0} collisions (not required)"
	elif [ "${5:-0}" -ge 1 ]; then ok "$t: $5 collisions"; else nok "$t: no collision: [$5]"; fi
	# Both sides name the same redundant SA in each collision.
	ru=$(sed -n 's/.*rekey collision on a Child SA: \(our\|the peer.s\) new Child SA \([0-9a-f/]*\) is redundant/\2/p' "$TB/ue.log" | sort)
	rn=$(sed -n 's/.*rekey collision on a Child SA: \(our\|the peer.s\) new Child SA \([0-9a-f/]*\) is redundant/\2/p' "$TB/n3.log" | sort)
	check "$t: the same redundant Child SAs on both sides" "$ru" "$rn"
	[ "$mode" = qkd ] && qkd_keys "$t" "$a0" "$b0"
done

# kmsd A cannot serve (stopped 5 s, longer than the N3IWF's 3 s kmsd timeout):
# the UE's rekeys parked at the N3IWF get TEMPORARY_FAILURE, the UE tries
# again, and once kmsd A is back rekeys go on, each with a fresh key; no
# hard lifetime is reached, and kmsd A served exactly the keys used.
t="qkd/nwu kmsd A stopped"
KPID=$(cat "$TB/kmsd-a.pid")
a0=$(served "$KMSD_A_OPS" enc_keys); b0=$(served "$KMSD_B_OPS" dec_keys)
n3_start qkd nwu --child-soft 60 --ike-soft 60
HOLD=16
( sleep 5; kill -STOP "$KPID"; sleep 5; kill -CONT "$KPID" ) &
SPID=$!
ue_hold qkd nwu --child-soft 2 --child-hard 40 --ike-soft 60
rc=$?
wait "$SPID"
n3_stop
common_checks "$t" qkd nwu "$rc"
tf() { sed -n 's/.*rekey counters: .*temp_fail=\([0-9]*\).*/\1/p' "$1" | tail -n 1; }
[ "$(tf "$TB/n3.log")" -ge 1 ] && ok "$t: the N3IWF answered TEMPORARY_FAILURE ($(tf "$TB/n3.log"))" ||
	nok "$t: no TEMPORARY_FAILURE from the N3IWF: [$(tf "$TB/n3.log")]"
check "$t: the UE got as many TEMPORARY_FAILUREs" "$(tf "$TB/n3.log")" "$(tf "$TB/ue.log")"
check_match "$t: the UE's rekeys go on after kmsd A is back" \
	'started by the UE' "$(sed -n '/TEMPORARY_FAILURE/,$p' "$TB/ue.log" | grep 'Child SA rekeyed')"
# A call that timed out may still be served once kmsd A runs again: that key
# is lost (never used), at most one per failed draw.
x=$(rkstat qkd_keys "$TB/n3.log"); dr=$(rkstat qkd_drawn "$TB/n3.log")
fails=$(sed -n 's/.*stats: .*draw_fail=\([0-9]*\).*/\1/p' "$TB/n3.log" | tail -n 1)
da=$(($(served "$KMSD_A_OPS" enc_keys) - a0))
[ "$da" -ge $((13 + dr)) ] && [ "$da" -le $((13 + dr + fails)) ] &&
	ok "$t: kmsd A served $da keys: 13 + $dr drawn (+ at most $fails timed out)" ||
	nok "$t: kmsd A served [$da] keys for 13 + $dr drawn, $fails failed draws"
check "$t: kmsd B dec_keys served 13 + 1 per rekey" "$((13 + x))" "$(($(served "$KMSD_B_OPS" dec_keys) - b0))"
[ "${x:-0}" -ge 4 ] && ok "$t: $x fresh QKD keys for rekeys" || nok "$t: only [$x] fresh QKD keys"

# --hold 0: until SIGTERM, then the UE deletes the IKE SA it holds (the one
# its rekeys led to) and exits 0; the N3IWF is left with no IKE SA.
t="psk/nwu hold until SIGTERM"
n3_start psk nwu --child-soft 1 --ike-soft 3
HOLD=0
ue_hold psk nwu --child-soft 1 --ike-soft 3 &
UPID=$!
sleep 5
# SIGTERM to timeout(1), which passes it to ike-ue and returns its status.
kill -TERM "$(pgrep -P "$UPID")"; wait "$UPID"; rc=$?
sleep 0.3
kill -USR1 "$N3PID"; sleep 0.3
check "$t: ike-ue exit code" 0 "$rc"
check_match "$t: the N3IWF has no IKE SA left" 'sas=0$' "$(grep 'stats: init' "$TB/n3.log" | tail -n 1)"
check "$t: the N3IWF saw the Delete of the Child SAs the UE held" \
	"$(inuse "$TB/ue.log")" "$(sed -n 's/.*IKE SA deleted by the peer: .* in use:\([^;]*\);.*/\1/p' "$TB/n3.log" | tail -n 1)"
[ "$(grep -c 'IKE SA rekeyed' "$TB/ue.log")" -ge 1 ] && ok "$t: after an IKE SA rekey" || nok "$t: no IKE SA rekey"
n3_stop
