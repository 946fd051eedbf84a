#!/bin/sh
# qkd-sim with STATE_DIR (SQLite stores): across clean restarts (SIGTERM)
# and crashes (SIGKILL) of both KMEs, no key ID is issued twice, keys
# assigned before are still retrievable at the slave's KME (exactly once),
# the stores never hold a delivered key in clear (raw bytes, base64 or hex),
# and the key-encryption key files are mode 600.
. "$(dirname "$0")/lib.sh"
NO_KMSD=1; export NO_KMSD	# the KMEs alone: no kmsd pool drawing keys
STATE_DIR=$TB/state; export STATE_DIR
tb_up

TBSH="sh $top/tests/testbed.sh"
W=$TB/work; mkdir -p "$W"
ALL=$W/all.keys; : >"$ALL"		# every key handed out: "ID KEY"
# get WHO URL SLAVE N NAME: enc_keys, remembers the container in $W/NAME
get() {
	r=$(enc "$1" "$2" "$3" "{\"number\":$4}")
	check "$5: enc_keys $4 keys: 200" 200 "$(http_code "$r")"
	http_body "$r" >"$W/$5"
	pairs "$(http_body "$r")" >>"$ALL"
}
ids() { jq -r '.keys[].key_ID' "$W/$1" 2>/dev/null | sort; }
# fetch WHO URL MASTER NAME: dec_keys of all keys of $W/NAME; prints the output
fetch() { dec "$1" "$2" "$3" "$(idsbody "$(cat "$W/$4")")"; }
# same_at NAME WHO URL MASTER NAME2 [NAME3]: dec_keys of all keys of
# $W/NAME2; checks (NAME3) that the answer is 200 and (NAME) that its bytes
# are those of $W/NAME2. The answer stays in $r.
same_at() { dec_same "$1" "$2" "$3" "$4" "$(cat "$W/$5")" ${6:+"$6"}; }
wait_up() {	# until enc_keys works at A and B (10 s)
	i=0
	while [ $i -lt 50 ]; do
		ra=$(enc A "$KME_A_URL" sae-b '{"number":1}' | tail -n 1)
		rb=$(enc X "$KME_B_URL" sae-a '{"number":1}' | tail -n 1)
		[ "$ra$rb" = 200200 ] && return 0
		sleep 0.2; i=$((i + 1))
	done
	return 1
}
# disjoint NAME FILE1 FILE2: no line in common
disjoint() { check "$1" 0 "$(comm -12 "$2" "$3" | grep -c .)"; }

# in_clear FILE...: how many of the keys in $ALL appear in the files as raw
# bytes, base64 text or hex text.
in_clear() {
	: >"$W/pat.hex"; : >"$W/pat.b64"
	while read -r id k; do
		printf '%s' "$k" | base64 -d | od -An -v -tx1 | tr -d ' \n' >>"$W/pat.hex"
		echo >>"$W/pat.hex"
		echo "$k" >>"$W/pat.b64"
	done <"$ALL"
	n=0
	for f in "$@"; do
		[ -f "$f" ] || continue
		od -An -v -tx1 "$f" | tr -d ' \n' >"$W/file.hex"
		h=$(grep -o -F -f "$W/pat.hex" "$W/file.hex" | wc -l)	# raw bytes
		t=$(grep -a -o -F -f "$W/pat.hex" "$f" | wc -l)		# hex text
		b=$(grep -a -o -F -f "$W/pat.b64" "$f" | wc -l)		# base64 text
		n=$((n + h + t + b))
	done
	echo $n
}

r=$(sae_curl A "$KME_A_URL/api/v1/keys/sae-b/status")
check "status with a db: 200" 200 "$(http_code "$r")"

# --- before the first restart ---
get A "$KME_A_URL" sae-b 20 pend1	# assigned, fetched only after the restart
get A "$KME_A_URL" sae-b 10 done1	# fetched now
get X "$KME_B_URL" sae-a 5 pendx	# B as master, fetched at A after the restart
same_at "done1: delivered at B before the restart" B "$KME_B_URL" sae-a done1
(ids pend1; ids done1; ids pendx) | sort >"$W/before.ids"

# positive control for the clear-text search: it must find a key we plant
head -c 3000 /dev/urandom >"$W/control"
head -n 1 "$ALL" | cut -d' ' -f2 | base64 -d >>"$W/control"
head -c 3000 /dev/urandom >>"$W/control"
check "control: the clear-text search finds a planted key" true \
	"$([ "$(in_clear "$W/control")" -ge 1 ] && echo true || echo false)"
head -n 1 "$ALL" | cut -d' ' -f2 >"$W/control2"
check "control: the clear-text search finds a planted base64 key" true \
	"$([ "$(in_clear "$W/control2")" -ge 1 ] && echo true || echo false)"

ls "$STATE_DIR" >"$W/state.ls"
check_match "STATE_DIR holds both databases" 'kme-a\.db.*kme-b\.db' "$(tr '\n' ' ' <"$W/state.ls")"
check "no key in clear in STATE_DIR while running" 0 "$(in_clear "$STATE_DIR"/*)"
for s in a b; do
	check "kme-$s.kek exists, mode 600" 600 "$(stat -c %a "$STATE_DIR/kme-$s.kek" 2>/dev/null)"
done

# --- clean restart of both ---
$TBSH stop a "$TB"; $TBSH stop b "$TB"
$TBSH start a "$TB"; $TBSH start b "$TB"
wait_up; check "after a clean restart both directions work" 0 $?
check "no key in clear in STATE_DIR after a clean stop" 0 "$(in_clear "$STATE_DIR"/*)"

get A "$KME_A_URL" sae-b 40 after1
get X "$KME_B_URL" sae-a 10 afterx1
(ids after1; ids afterx1) | sort >"$W/after1.ids"
disjoint "after a clean restart: no key ID issued again" "$W/before.ids" "$W/after1.ids"
same_at "pend1: bytes equal to A's" B "$KME_B_URL" sae-a pend1 "pend1 (assigned before the restart): dec_keys at B: 200"
r=$(fetch B "$KME_B_URL" sae-a done1)
check "done1 (delivered before the restart): dec_keys again: 400" 400 "$(http_code "$r")"
same_at "pendx: bytes equal to B's" A "$KME_A_URL" sae-x pendx "pendx (B as master before the restart): dec_keys at A: 200"
same_at "after1: bytes equal at B" B "$KME_B_URL" sae-a after1
same_at "afterx1: bytes equal at A" A "$KME_A_URL" sae-x afterx1

# --- crash of both (SIGKILL) ---
get A "$KME_A_URL" sae-b 15 pend2
get X "$KME_B_URL" sae-a 6 pendx2
(cat "$W/before.ids" "$W/after1.ids"; ids pend2; ids pendx2) | sort >"$W/before2.ids"
$TBSH kill a "$TB"; $TBSH kill b "$TB"
$TBSH start a "$TB"; $TBSH start b "$TB"
wait_up; check "after a crash of both, both directions work" 0 $?
get A "$KME_A_URL" sae-b 40 after2
get X "$KME_B_URL" sae-a 10 afterx2
(ids after2; ids afterx2) | sort >"$W/after2.ids"
disjoint "after a crash: no key ID issued again" "$W/before2.ids" "$W/after2.ids"
same_at "pend2: bytes equal to A's" B "$KME_B_URL" sae-a pend2 "pend2 (assigned just before the crash): dec_keys at B: 200"
same_at "pendx2: bytes equal to B's" A "$KME_A_URL" sae-x pendx2
r=$(fetch B "$KME_B_URL" sae-a pend1)
check "pend1 (delivered before the crash): dec_keys again: 400" 400 "$(http_code "$r")"
same_at "after2: bytes equal at B" B "$KME_B_URL" sae-a after2
same_at "afterx2: bytes equal at A" A "$KME_A_URL" sae-x afterx2

# --- one side only: crash B while A keeps running, then A while B runs ---
get A "$KME_A_URL" sae-b 12 pend3
$TBSH kill b "$TB"; $TBSH start b "$TB"
wait_up; check "after a crash of B alone, both directions work" 0 $?
get A "$KME_A_URL" sae-b 20 after3
same_at "pend3 (assigned before B crashed): bytes equal" B "$KME_B_URL" sae-a pend3
same_at "after3: bytes equal at B" B "$KME_B_URL" sae-a after3
get X "$KME_B_URL" sae-a 7 pendx4
$TBSH kill a "$TB"; $TBSH start a "$TB"
wait_up; check "after a crash of A alone, both directions work" 0 $?
get A "$KME_A_URL" sae-b 20 after4
same_at "pendx4 (assigned before A crashed): bytes equal" A "$KME_A_URL" sae-x pendx4
same_at "after4: bytes equal at B" B "$KME_B_URL" sae-a after4

# --- crashes under load: B killed while A hands out keys, then A killed ---
# Every key A answered 200 for was committed at B first, so it must be
# there after B's crash; no key A handed out before its own crash is
# handed out again.
load() {	# OUT: 13-key enc_keys at A until told to stop
	while [ ! -f "$W/stop" ]; do
		r=$(enc A "$KME_A_URL" sae-b '{"number":13}')
		[ "$(http_code "$r")" = 200 ] && http_body "$r" >>"$1" && echo >>"$1"
	done
}
rm -f "$W/stop"; : >"$W/load1"
load "$W/load1" &
lp=$!
sleep 1
$TBSH kill b "$TB"
touch "$W/stop"; wait $lp
$TBSH start b "$TB"
wait_up; check "after B crashed under load, both directions work" 0 $?
grep '^{' "$W/load1" | jq -r '.keys[] | "\(.key_ID) \(.key)"' | sort >"$W/load1.keys"
cat "$W/load1.keys" >>"$ALL"
check "load before B's crash: keys were handed out" true \
	"$([ "$(grep -c . "$W/load1.keys")" -ge 13 ] && echo true || echo false)"
split -l 100 "$W/load1.keys" "$W/l1."
: >"$W/load1.b"
for f in "$W"/l1.*; do
	body=$(cut -d' ' -f1 "$f" | jq -R -s -c '{key_IDs: [split("\n")[] | select(. != "") | {key_ID: .}]}')
	pairs "$(http_body "$(dec B "$KME_B_URL" sae-a "$body")")" >>"$W/load1.b"
done
same "every key A answered before B's crash is at B after its restart" \
	"$(cat "$W/load1.keys")" "$(sort "$W/load1.b")"

rm -f "$W/stop"; : >"$W/load2"
load "$W/load2" &
lp=$!
sleep 1
$TBSH kill a "$TB"
touch "$W/stop"; wait $lp
$TBSH start a "$TB"
wait_up; check "after A crashed under load, both directions work" 0 $?
grep '^{' "$W/load2" | jq -r '.keys[] | "\(.key_ID) \(.key)"' | sort >"$W/load2.keys"
cat "$W/load2.keys" >>"$ALL"
get A "$KME_A_URL" sae-b 100 after5
get A "$KME_A_URL" sae-b 100 after6
(ids after5; ids after6) | sort >"$W/after5.ids"
disjoint "after A crashed under load: no key ID issued again" \
	"$(cut -d' ' -f1 "$W/load2.keys" | sort >"$W/load2.ids"; echo "$W/load2.ids")" "$W/after5.ids"
split -l 100 "$W/load2.keys" "$W/l2."
: >"$W/load2.b"
for f in "$W"/l2.*; do
	body=$(cut -d' ' -f1 "$f" | jq -R -s -c '{key_IDs: [split("\n")[] | select(. != "") | {key_ID: .}]}')
	pairs "$(http_body "$(dec B "$KME_B_URL" sae-a "$body")")" >>"$W/load2.b"
done
same "every key A answered before its crash is at B" "$(cat "$W/load2.keys")" "$(sort "$W/load2.b")"

# --- every ID ever handed out is unique, and none is in clear on disk ---
check "no key ID handed out twice over all restarts" 0 "$(cut -d' ' -f1 "$ALL" | sort | uniq -d | grep -c .)"
no_crash
check "no key in clear in STATE_DIR at the end ($(grep -c . "$ALL") keys searched)" 0 "$(in_clear "$STATE_DIR"/*)"
for s in a b; do
	check "kme-$s.kek still mode 600" 600 "$(stat -c %a "$STATE_DIR/kme-$s.kek" 2>/dev/null)"
done
