#!/bin/sh
# Run by mk/systemd-test.sh inside a Debian 12 container booted by
# systemd-nspawn (systemd is its PID 1), where apt has installed the
# qkd-ipsec packages and mkcerts.sh the test PKI. Drives the shipped units
# with systemctl and the shipped example configs, as an operator would.
# Prints ok/not ok lines; exits 1 if any check failed.
set -u
pass=0; fail=0
ok()  { echo "ok - $*"; pass=$((pass + 1)); }
nok() { echo "not ok - $*"; fail=$((fail + 1)); }
check() { if [ "$2" = "$3" ]; then ok "$1"; else nok "$1: expected [$2], got [$3]"; fi; }
finish() { echo "systemd-steps: $pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }
E=/etc/qkd-ipsec
C=$E/certs
L=/root/logs
mkdir -p "$L"
UID_Q=$(id -u qkd-ipsec)
GID_Q=$(id -g qkd-ipsec)

prop() { systemctl show -P "$2" "$1"; }
# wait_ok SECONDS CMD...: until CMD succeeds
wait_ok() {
	t=$(($1 * 10)); shift
	while ! "$@" >/dev/null 2>&1; do
		t=$((t - 1)); [ $t -gt 0 ] || return 1; sleep 0.1
	done
}
# journal UNIT: its messages since this boot, text only
journal() { journalctl -b -q -o cat -u "$1" 2>/dev/null; }
in_journal() { journal "$1" | grep -q -F "$2"; }
metric() { curl -s --max-time 5 "$1/metrics" | awk -v m="$2" '$1 == m { print $2; f = 1 } END { if (!f) print -1000 }'; }
kc() {	# SITE-CERT URL ARGS...: kmsclient as an SAE
	w=$1; u=$2; shift 2
	kmsclient --url "$u" --cert "$C/$w.crt" --key "$C/$w.key" --ca "$C/ca.crt" "$@"
}

# start UNIT...: as an operator does, systemctl enable --now; then each one
# active with a main process. (Enabled, multi-user.target holds it: a
# stopped instance stays loaded, and its main process's exit status with it.)
start() {
	systemctl enable --now "$@" 2>/dev/null
	check "systemctl enable --now $*" 0 "$?"
	for u in "$@"; do
		check "$u enabled (multi-user.target wants it) and active (running)" \
			"enabled active running" \
			"$(systemctl is-enabled "$u") $(prop "$u" ActiveState) $(prop "$u" SubState)"
	done
}

# stop UNIT: a clean stop: SIGTERM, the main process exits 0, not failed
stop() {
	systemctl stop "$1"
	check "systemctl stop $1" 0 "$?"
	check "$1 stopped cleanly (state, result, main process exit code and status)" \
		"inactive success exited 0" \
		"$(prop "$1" ActiveState) $(prop "$1" Result) $(prop "$1" ExecMainCode | sed 's/^1$/exited/') $(prop "$1" ExecMainStatus)"
}

# status_field PID FIELD: a line of /proc/PID/status, whitespace squeezed
status_field() { awk -v f="$2:" '$1 == f { $1 = ""; sub(/^ /, ""); print }' "/proc/$1/status"; }

# probe PID PATH: write a file at PATH in the mount namespace of PID, as
# root (so that only the sandbox, not the file modes, can stop it): "ok",
# or the error ("Read-only file system" ...).
# shellcheck disable=SC2016 # $1 of the inner sh
WRITE='echo probe >"$1" && rm -f "$1"'
probe() {
	if out=$(nsenter -t "$1" -m -- sh -c "$WRITE" probe "$2" 2>&1); then
		echo ok
	else
		echo "$out" | sed -n 's/.*: \([^:]*\)$/\1/p' | head -n 1
	fi
}
# probe_user PID PATH: the same as the unit's user and group
probe_user() {
	if nsenter -t "$1" -m -- setpriv --reuid="$UID_Q" --regid="$GID_Q" --clear-groups \
		sh -c "$WRITE" probe "$2" >/dev/null 2>&1; then
		echo ok
	else
		echo denied
	fi
}

# hardened UNIT CAPS WRITABLE...: its main process runs as qkd-ipsec with
# exactly the capabilities CAPS (hex, effective = permitted = bounding), no
# new privileges, a seccomp filter; only the WRITABLE directories (and its
# private /tmp) take a file, everything else is read-only (ProtectSystem=
# strict) or gone (ProtectHome).
hardened() {
	u=$1; caps=$2; shift 2
	pid=$(prop "$u" MainPID)
	check "$u: runs as qkd-ipsec (real, effective, saved uid and gid)" \
		"$UID_Q $UID_Q $UID_Q $UID_Q / $GID_Q $GID_Q $GID_Q $GID_Q" \
		"$(status_field "$pid" Uid | tr -s '\t ' ' ') / $(status_field "$pid" Gid | tr -s '\t ' ' ')"
	check "$u: capabilities effective, permitted, bounding = $caps" "$caps $caps $caps" \
		"$(status_field "$pid" CapEff) $(status_field "$pid" CapPrm) $(status_field "$pid" CapBnd)"
	check "$u: NoNewPrivs 1, Seccomp 2 (filter)" "1 2" \
		"$(status_field "$pid" NoNewPrivs) $(status_field "$pid" Seccomp)"
	for d in "$@"; do
		check "$u: writes in $d (as root and as qkd-ipsec)" "ok ok" \
			"$(probe "$pid" "$d/.qkd-probe") $(probe_user "$pid" "$d/.qkd-probe")"
	done
	for d in /etc /etc/qkd-ipsec /usr/sbin /var/lib /var/log /var/cache /opt /srv; do
		case " $* " in *" $d "*) continue ;; esac
		check "$u: cannot write in $d, even as root (ProtectSystem=strict)" \
			"Read-only file system" "$(probe "$pid" "$d/.qkd-probe")"
	done
	# ProtectHome: /root is an empty, inaccessible directory in its namespace
	check "$u: /root hidden (ProtectHome), even from root in its namespace" "" \
		"$(nsenter -t "$pid" -m -- ls -A /root 2>/dev/null)"
	# PrivateTmp: its /tmp takes a file the machine's /tmp never sees
	nsenter -t "$pid" -m -- sh -c 'echo probe >/tmp/.qkd-probe'
	check "$u: its /tmp is private (a file it writes there is not in the host's /tmp)" \
		"probe no" "$(nsenter -t "$pid" -m -- cat /tmp/.qkd-probe) $([ -e /tmp/.qkd-probe ] && echo yes || echo no)"
	nsenter -t "$pid" -m -- rm -f /tmp/.qkd-probe
}

check "systemd is PID 1" systemd "$(cat /proc/1/comm)"
for u in qkd-sim kmsd ike-n3iwf ike-ue; do
	check "unit $u@.service loaded from the package, disabled" "loaded disabled" \
		"$(prop "$u@x.service" LoadState) $(systemctl is-enabled "$u@x.service" 2>&1)"
done

# --- qkd-sim@kme-a + @kme-b: a key at A is the same key at B
start qkd-sim@kme-a qkd-sim@kme-b
if wait_ok 20 kc sae-a https://127.0.0.1:8443 status sae-b; then
	ok "qkd-sim A answers Get status (the link to B is up)"
else
	nok "qkd-sim A does not answer: $(journal qkd-sim@kme-a | tail -n 3)"
fi
kc sae-a https://127.0.0.1:8443 enc sae-b -n 2 >"$L/enc" 2>&1
check "enc_keys at qkd-sim A (sae-a): 2 keys" 2 "$(grep -c . "$L/enc")"
# shellcheck disable=SC2046
kc sae-b https://127.0.0.1:8444 dec sae-a $(awk '{print $1}' "$L/enc") >"$L/dec" 2>&1
check "dec_keys at qkd-sim B (sae-b): the same IDs and bytes" "$(sort "$L/enc")" "$(sort "$L/dec")"
hardened qkd-sim@kme-a 0000000000000000 /var/lib/qkd-ipsec
check "qkd-sim@ declares no reload (qkd-sim has no SIGHUP)" no "$(prop qkd-sim@kme-a CanReload)"
stop qkd-sim@kme-a
stop qkd-sim@kme-b

# --- kmsd@kmsd-a-sim + @kmsd-b-sim (each with its KME inside)
start kmsd@kmsd-a-sim kmsd@kmsd-b-sim
for s in a:9464 b:9465; do
	if wait_ok 30 curl -sf "http://127.0.0.1:${s#*:}/healthz"; then
		ok "kmsd ${s%%:*} healthy"
	else
		nok "kmsd ${s%%:*} not healthy: $(journal "kmsd@kmsd-${s%%:*}-sim" | tail -n 3)"
	fi
done
check "kmsd A's pool and KEK in its StateDirectory, qkd-ipsec, 0600" \
	"qkd-ipsec 600 qkd-ipsec 600" \
	"$(stat -c '%U %a' /var/lib/qkd-ipsec/kmsd-a.db /var/lib/qkd-ipsec/kmsd-a.kek 2>&1 | tr '\n' ' ' | sed 's/ $//')"
check "StateDirectory /var/lib/qkd-ipsec: qkd-ipsec, 0700" "qkd-ipsec 700" \
	"$(stat -c '%U %a' /var/lib/qkd-ipsec)"
hardened kmsd@kmsd-a-sim 0000000000000000 /var/lib/qkd-ipsec
# reload: SIGHUP to the same process, which says what it reloaded
pid=$(prop kmsd@kmsd-a-sim MainPID)
check "kmsd@ can reload" yes "$(prop kmsd@kmsd-a-sim CanReload)"
systemctl reload kmsd@kmsd-a-sim
check "systemctl reload kmsd@kmsd-a-sim" 0 "$?"
if wait_ok 10 in_journal kmsd@kmsd-a-sim "SIGHUP: ACL, SAE certificates and server certificate reloaded"; then
	ok "kmsd A logged the reload (ACL, SAE certificates, server certificate)"
else
	nok "kmsd A did not log a reload: $(journal kmsd@kmsd-a-sim | tail -n 3)"
fi
check "kmsd A after reload: the same main process, active, healthy" "$pid active ok" \
	"$(prop kmsd@kmsd-a-sim MainPID) $(prop kmsd@kmsd-a-sim ActiveState) $(curl -sf http://127.0.0.1:9464/healthz >/dev/null && echo ok)"

# --- ike-n3iwf@n3iwf-qkd, then ike-ue@ue-qkd: one qkd NWu connection
enc0=$(metric http://127.0.0.1:9464 'kmsd_keys_served_total{endpoint="enc_keys"}')
dec0=$(metric http://127.0.0.1:9465 'kmsd_keys_served_total{endpoint="dec_keys"}')
start ike-n3iwf@n3iwf-qkd
if wait_ok 20 in_journal ike-n3iwf@n3iwf-qkd "listening on 127.0.0.1:500"; then
	ok "ike-n3iwf listens on 127.0.0.1:500 (CAP_NET_BIND_SERVICE from the unit)"
else
	nok "ike-n3iwf does not listen: $(journal ike-n3iwf@n3iwf-qkd | tail -n 3)"
fi
start ike-ue@ue-qkd
if wait_ok 30 in_journal ike-ue@ue-qkd "IKE SA established"; then
	ok "ike-ue: the IKE SA was established ($(journal ike-ue@ue-qkd | grep -m1 'IKE SA established' | sed 's/.*IKE SA/IKE SA/'))"
else
	nok "ike-ue: no IKE SA: $(journal ike-ue@ue-qkd | tail -n 3)"
fi
in_journal ike-n3iwf@n3iwf-qkd "IKE SA established"
check "ike-n3iwf: the IKE SA was established" 0 "$?"
check "ike-ue holds its connection (hold_s = 0): still active" active "$(prop ike-ue@ue-qkd ActiveState)"
enc1=$(metric http://127.0.0.1:9464 'kmsd_keys_served_total{endpoint="enc_keys"}')
dec1=$(metric http://127.0.0.1:9465 'kmsd_keys_served_total{endpoint="dec_keys"}')
check "kmsd A served 13 keys (enc_keys) for the connection" 13 "$((enc1 - enc0))"
check "kmsd B served the same 13 (dec_keys)" 13 "$((dec1 - dec0))"
hardened ike-n3iwf@n3iwf-qkd 0000000000001400 /run/ike-n3iwf-n3iwf-qkd /var/log/qkd-ipsec
hardened ike-ue@ue-qkd 0000000000001400 /run/ike-ue-ue-qkd /var/log/qkd-ipsec
stop ike-ue@ue-qkd
stop ike-n3iwf@n3iwf-qkd

# --- the data plane's TUN under the unit's sandbox: ike-n3iwf with
# tunnel = yes opens its TUN at start, gives it nas_ip and routes inner_ip
# into it (CAP_NET_ADMIN, DeviceAllow=/dev/net/tun, the system-call filter)
# /dev/net/tun: 0666 as udev's 50-udev-default.rules makes it on a stock
# Debian host (KERNEL=="tun", MODE="0666"); this sandbox has no udev, and
# systemd-nspawn copies the host's 0600 node, which qkd-ipsec cannot open.
chmod 0666 /dev/net/tun
sed 's/^log_level = .*/&\ntunnel = yes\nstatus_file = \/run\/ike-n3iwf-n3iwf-tun\/status/' \
	$E/n3iwf-qkd.conf >$E/n3iwf-tun.conf
start ike-n3iwf@n3iwf-tun
if wait_ok 20 in_journal ike-n3iwf@n3iwf-tun "tunnel: TUN qkd0"; then
	ok "ike-n3iwf@n3iwf-tun opened its TUN ($(journal ike-n3iwf@n3iwf-tun | grep -m1 'tunnel: TUN' | sed 's/.*tunnel: //'))"
else
	nok "ike-n3iwf@n3iwf-tun: no TUN: $(journal ike-n3iwf@n3iwf-tun | tail -n 3)"
fi
check "qkd0 up with nas_ip 10.60.0.1, inner_ip 10.60.0.2 routed into it" "10.60.0.1/32 qkd0" \
	"$(ip -4 -o addr show dev qkd0 2>&1 | awk '{print $4}') $(ip -4 route get 10.60.0.2 2>&1 | sed -n 's/.* dev \([^ ]*\).*/\1/p')"
wait_ok 5 test -s /run/ike-n3iwf-n3iwf-tun/status
check "its status file in its RuntimeDirectory" 0 "$?"
stop ike-n3iwf@n3iwf-tun
check "qkd0 gone with the service" "" "$(ip -o link show dev qkd0 2>/dev/null)"
stop kmsd@kmsd-a-sim
stop kmsd@kmsd-b-sim

# --- what the journal and the manager say afterwards
units="qkd-sim@kme-a qkd-sim@kme-b kmsd@kmsd-a-sim kmsd@kmsd-b-sim ike-n3iwf@n3iwf-qkd ike-ue@ue-qkd ike-n3iwf@n3iwf-tun"
# shellcheck disable=SC2086
systemctl disable $units 2>/dev/null
check "systemctl disable of the seven instances: no link left under /etc/systemd" "0 " \
	"$? $(find /etc/systemd -name '*qkd-sim@*' -o -name '*kmsd@*' -o -name '*ike-*@*' 2>/dev/null)"
for u in $units; do journal "$u"; done >"$L/journal.txt"
check "no failed unit" "" "$(systemctl list-units --failed --no-legend --plain)"
check "no system call refused by the filter (no EPERM in the daemons' logs)" "" \
	"$(grep -i -e 'operation not permitted' -e 'permission denied' "$L/journal.txt" | sort | uniq -c | head -n 5)"
awk '{print $2}' "$L/enc" >"$L/keys.b64"
check "no key bytes in the journal (the base64 of qkd-sim A's keys)" 0 \
	"$(grep -c -F -f "$L/keys.b64" "$L/journal.txt")"
finish
