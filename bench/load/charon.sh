# shellcheck shell=sh
# strongSwan's charon as the responder of bench/load/run.sh (sourced; uses
# tests/interop/charon.sh, the interop tests' harness). charon runs in a
# network namespace of its own, on its 127.0.0.1:500, with
# bench/load/strongswan.conf.in (threads, IKE SA table, DoS limits off,
# logging) and bench/load/psk-responder.conf.in; a fresh charon per cell.
#   lc_setup DIR   the namespace (LC_NS; LC_RUN: the prefix that runs a
#                  command in it), charon's directory
#   lc_start LOG   a fresh charon, config loaded; RESP_PID = charon's pid
#   lc_stop        stop it (its log appended to LOG)
#   lc_cleanup     charon and the namespace, whatever is left (a trap)
# Environment: CHARON_THREADS (16, charon's default), CHARON_TABLE (4096:
# charon.ikesa_table_size), CHARON_SEGMENTS (16), CHARON_LOG (-1: silent;
# 0..4 for charon's file log while debugging).
CS_HOME=$top/tests/interop
. "$top/tests/interop/charon.sh"
LC_DIR=""
LC_NS=""
LC_RUN=""
LC_LOG=""

lc_setup() {
	cs_install || return 1
	LC_DIR=$1
	CS_REG=$LC_DIR.reg
	mkdir -p "$LC_DIR" || return 1
	LC_NS=bload$$
	cs_ns_add "$LC_NS" || return 1
	LC_RUN="ip netns exec $LC_NS"
	cs_render "$top/bench/load/strongswan.conf.in" "$LC_DIR/strongswan.conf" \
	    DIR="$LC_DIR" THREADS="${CHARON_THREADS:-16}" \
	    TABLE="${CHARON_TABLE:-4096}" SEGMENTS="${CHARON_SEGMENTS:-16}" \
	    LOGLEVEL="${CHARON_LOG:--1}"
}

lc_start() {
	LC_LOG=$1
	if ! cs_start "$LC_DIR" "$LC_NS" no 2>>"$LC_LOG" ||
	    ! cs_load "$LC_DIR" "$top/bench/load/psk-responder.conf.in" \
		LOCAL_ID=n3iwf.test PSK="$PSK" 2>>"$LC_LOG"; then
		cat "$LC_DIR/charon.out" "$LC_DIR/charon.log" >>"$LC_LOG" 2>/dev/null
		return 1
	fi
	RESP_PID=$(cat "$LC_DIR/charon.pid")
}

# lc_held: IKE SAs charon holds established now (swanctl --stats).
lc_held() {
	cs_swanctl "$LC_DIR" --stats 2>/dev/null |
	    awk '$1 == "IKE_SAs:" { print $2 - $4 }'
}

# (cs_stop's `wait` returns charon's status, 137 after a SIGKILL: the
# "|| true" keeps run.sh's set -e out of these functions.)
lc_stop() {
	cs_stop "$LC_DIR" || true
	cat "$LC_DIR/charon.out" "$LC_DIR/charon.log" >>"$LC_LOG" 2>/dev/null || true
}

lc_cleanup() {
	[ -n "$LC_DIR" ] || return 0
	cs_cleanup "$CS_REG" || true
}
