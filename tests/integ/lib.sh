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

# check NAME EXPECTED ACTUAL
check() {
	if [ "$2" = "$3" ]; then ok "$1"; else nok "$1: expected [$2], got [$3]"; fi
}

# check_match NAME REGEX ACTUAL
check_match() {
	if printf '%s' "$3" | grep -qE -- "$2"; then ok "$1"; else nok "$1: [$3] does not match /$2/"; fi
}

# curl as an SAE: sae_curl A|B|X|ROGUE|NONE [curl args...]; prints body, then
# the HTTP status on the last line.
sae_curl() {
	who=$1; shift
	case $who in
	A) set -- --cert "$SAE_A_CERT" --key "$SAE_A_KEY" "$@" ;;
	B) set -- --cert "$SAE_B_CERT" --key "$SAE_B_KEY" "$@" ;;
	X) set -- --cert "$SAE_X_CERT" --key "$SAE_X_KEY" "$@" ;;
	ROGUE) set -- --cert "$ROGUE_CERT" --key "$ROGUE_KEY" "$@" ;;
	NONE) ;;
	esac
	curl -s --max-time 10 --cacert "$CA" -w '\n%{http_code}' "$@"
}

# Status code and body of the last sae_curl output.
http_code() { printf '%s' "$1" | tail -n 1; }
http_body() { printf '%s' "$1" | sed '$d'; }

# json_get JSON FILTER: jq -r FILTER on JSON (empty on bad JSON).
json_get() {
	printf '%s' "$1" | jq -r "$2" 2>/dev/null
}
