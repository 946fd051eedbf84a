# A throw-away PostgreSQL 15 server for the kmsd pool tests (sourced after
# lib.sh): initdb in a temporary directory, listening only on a unix socket
# in it (no TCP), trust authentication for the one role "kmsd" it creates.
# As root the server runs as the Debian user "postgres" (initdb and postgres
# refuse root); otherwise as the caller. A missing server binary is a
# failed check (Debian package postgresql-15, see mk/deps.sh), not a skip.
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGD=""
# pg_as CMD...: CMD as the server's user.
pg_as() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
# pg_up: initdb and start; sets PGD, PG_CONNINFO; exits the test on failure.
pg_up() {
	if [ ! -x "$PGBIN/initdb" ] || ! command -v pg_dump >/dev/null; then
		echo "not ok - PostgreSQL 15 not installed (postgresql-15, see mk/deps.sh)"
		exit 1
	fi
	PGD=$(mktemp -d /tmp/qkd-pg.XXXXXX)
	[ "$(id -u)" -ne 0 ] || chown postgres:postgres "$PGD"
	if ! pg_as "$PGBIN/initdb" -D "$PGD/data" -U kmsd --auth=trust \
	    >"$PGD/initdb.log" 2>&1; then
		echo "not ok - initdb: $(tail -n 3 "$PGD/initdb.log")"
		exit 1
	fi
	PG_CONNINFO="host=$PGD port=5432 dbname=postgres user=kmsd connect_timeout=2"
	pg_start || { echo "not ok - PostgreSQL did not start: $(tail -n 3 "$PGD/pg.log")"; exit 1; }
}
# pg_start / pg_stop: the server (fast stop: sessions are cut, as a crash or
# a failover would).
pg_start() {
	pg_as "$PGBIN/pg_ctl" -D "$PGD/data" -l "$PGD/pg.log" -w -t 30 \
	    -o "-c listen_addresses='' -k $PGD -p 5432 -c fsync=on" start >/dev/null
}
pg_stop() { pg_as "$PGBIN/pg_ctl" -D "$PGD/data" -m fast -w stop >/dev/null 2>&1; }
# pg_sql SQL: one query's rows, unaligned, as role kmsd.
pg_sql() { psql "$PG_CONNINFO" -X -A -t -q -c "$1"; }
pg_down() {
	[ -n "$PGD" ] || return 0
	pg_stop
	rm -rf "$PGD"
}

# --- kmsd on the PostgreSQL pool: instances P1, P2 (site A, SAE sae-a) ---
# pgk_conf N [API OPS]: $TB/kmsd-pN.conf from kmsd A's: its own id and
# ports (0: any; the ports it got are pinned after its first start, so a
# restart comes back on them), the pool in PostgreSQL, the same KEK file.
pgk_conf() {
	sed -e "s/^id = .*/id = kmsd-p$1/" \
	    -e "s/^listen = .*/listen = 127.0.0.1:${2:-0}/" \
	    -e "s/^metrics_listen = .*/metrics_listen = 127.0.0.1:${3:-0}/" \
	    -e "/^db = /d" \
	    -e "s|^\[pool\]\$|[pool]\nbackend = postgresql\nconninfo = $PG_CONNINFO|" \
	    "$TB/kmsd-a.conf" >"$TB/kmsd-p$1.conf"
}
# pgk_start N: starts kmsd PN, waits for its ready file; 0 or 1.
pgk_start() {
	rm -f "$TB/kmsd-p$1.ready"
	"$BINDIR/kmsd" --config "$TB/kmsd-p$1.conf" \
	    --ready-file "$TB/kmsd-p$1.ready" >>"$TB/kmsd-p$1.log" 2>&1 &
	echo $! >"$TB/kmsd-p$1.pid"
	i=0
	while [ ! -s "$TB/kmsd-p$1.ready" ]; do
		kill -0 "$(cat "$TB/kmsd-p$1.pid")" 2>/dev/null || return 1
		i=$((i + 1)); [ $i -lt 200 ] || return 1
		sleep 0.05
	done
}
# pgk_up N: first start; sets P<N>_URL and P<N>_OPS.
pgk_up() {
	pgk_conf "$1"
	pgk_start "$1" || { echo "not ok - kmsd P$1 did not start: $(tail -n 3 "$TB/kmsd-p$1.log")"; exit 1; }
	api=$(sed -n 's/^api_port=//p' "$TB/kmsd-p$1.ready")
	ops=$(sed -n 's/^metrics_port=//p' "$TB/kmsd-p$1.ready")
	pgk_conf "$1" "$api" "$ops"
	eval "P$1_URL=https://127.0.0.1:$api; P$1_OPS=http://127.0.0.1:$ops"
}
# pgk_signal N SIG: signals kmsd PN and waits until it is gone.
pgk_signal() {
	[ -f "$TB/kmsd-p$1.pid" ] || return 0
	pid=$(cat "$TB/kmsd-p$1.pid")
	kill -"$2" "$pid" 2>/dev/null
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	rm -f "$TB/kmsd-p$1.pid"
}
pgk_cleanup() {
	for f in "$TB"/kmsd-p*.pid; do
		[ -f "$f" ] || continue
		n=${f##*/kmsd-p}; pgk_signal "${n%.pid}" TERM
	done
	pg_down
}
# pg_in_clear KEYFILE FILE...: how many of KEYFILE's keys ("key_ID key"
# lines) appear in the files as raw bytes, as hex (bytea text output) or as
# base64 text.
pg_in_clear() {
	kf=$1; shift
	cut -d' ' -f2 "$kf" | base64 -d | od -An -v -tx1 -w32 | tr -d ' ' >"$PGD/pat.hex"
	cut -d' ' -f2 "$kf" >"$PGD/pat.b64"
	n=0
	for f in "$@"; do
		od -An -v -tx1 "$f" | tr -d ' \n' >"$PGD/file.hex"
		h=$(grep -o -F -f "$PGD/pat.hex" "$PGD/file.hex" | wc -l)
		x=$(grep -a -o -i -F -f "$PGD/pat.hex" "$f" | wc -l)
		b=$(grep -a -o -F -f "$PGD/pat.b64" "$f" | wc -l)
		n=$((n + h + x + b))
	done
	echo $n
}

# pgk_site_up: the test bed (its kmsd A stopped: it lends P1 and P2 its
# config), PostgreSQL, P1 and P2 on it, P1's pool filled to POOL_LOW.
pgk_site_up() {
	trap 'pgk_cleanup; tb_cleanup' EXIT
	trap 'exit 1' INT TERM
	tb_up
	pg_up
	sh "$top/tests/testbed.sh" stop kmsd-a "$TB"
	pgk_up 1
	pgk_up 2
	KMSD_A_OPS=$P1_OPS pool_wait_low
}
# pgk_load_start: enc_client x 2 against each of P1 and P2 (their answers
# in $W/client.pN.*); pgk_load_stop ends them (only them: the kmsd
# restarted by a test are this shell's children too).
pg_client() { ENC=$2/api/v1/keys/sae-b/enc_keys; enc_client "$1"; }
pgk_load_start() {
	PGK_JOBS=""
	for c in 1 2; do pg_client "p1.$c" "$P1_URL" & PGK_JOBS="$PGK_JOBS $!"; done
	for c in 1 2; do pg_client "p2.$c" "$P2_URL" & PGK_JOBS="$PGK_JOBS $!"; done
}
pgk_load_stop() { touch "$W/stop"; wait $PGK_JOBS; }
# at_b_same SERVED WHAT: every "key_ID key" line of SERVED fetched at B
# with dec_keys, no error, the same bytes; three checks.
at_b_same() {
	n=$(grep -c . "$1")
	errs=$(fetch_at_b "$1" "$1.atb")
	check "dec_keys at B: no error answers" "" "$errs"
	check "every key served $2 is at B ($n keys)" "$n" "$(grep -c . "$1.atb")"
	if [ "$n" -gt 0 ] && cmp -s "$1" "$1.atb"; then
		ok "every key served $2 has identical bytes at B"
	else
		nok "keys at B differ: $(diff "$1" "$1.atb" | grep -c '^[<>]') lines differ"
	fi
}
