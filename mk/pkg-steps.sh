#!/bin/sh
# Run by mk/pkg-test.sh as root inside a fresh Debian 12 root where apt has
# just installed the qkd-ipsec packages, in a network namespace of its own
# (the example configs' fixed loopback ports meet nobody). Prints ok/not ok
# lines; exits 1 if any check failed. Every daemon runs from its installed
# path with its shipped config, as the qkd-ipsec user, like its unit.
set -u
pass=0; fail=0
ok()  { echo "ok - $*"; pass=$((pass + 1)); }
nok() { echo "not ok - $*"; fail=$((fail + 1)); }
check() { if [ "$2" = "$3" ]; then ok "$1"; else nok "$1: expected [$2], got [$3]"; fi; }
finish() { echo "pkg-steps: $pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }
E=/etc/qkd-ipsec
C=$E/certs
L=/root/logs
mkdir -p "$L"
ip link set lo up

# --- what the packages put there
for p in qkd-ipsec-common qkd-ipsec-sim qkd-ipsec-kmsd qkd-ipsec-ike libkmsclient1 libkmsclient-dev; do
	check "$p installed" "install ok installed" "$(dpkg-query -W -f='${Status}' "$p" 2>&1)"
done
for b in /usr/sbin/qkd-sim /usr/sbin/kmsd /usr/sbin/ike-n3iwf /usr/sbin/ike-ue /usr/bin/kmsclient; do
	check "$b installed" true "$([ -x "$b" ] && echo true || echo false)"
done
check "system user qkd-ipsec (home, no login)" "qkd-ipsec:/var/lib/qkd-ipsec:/usr/sbin/nologin" \
	"$(getent passwd qkd-ipsec | cut -d: -f1,6,7)"
check "/var/lib/qkd-ipsec: qkd-ipsec, 0700" "qkd-ipsec 700" "$(stat -c '%U %a' /var/lib/qkd-ipsec 2>&1)"
check "/etc/qkd-ipsec/certs: root:qkd-ipsec, 0750" "root qkd-ipsec 750" "$(stat -c '%U %G %a' $C 2>&1)"
check "7 conffiles in /etc/qkd-ipsec" 7 "$(dpkg-query -W -f='${Conffiles}\n' qkd-ipsec-sim \
	qkd-ipsec-kmsd qkd-ipsec-ike | grep -c " $E/[a-z0-9-]*\.conf ")"
for u in qkd-sim kmsd ike-n3iwf ike-ue; do
	check "unit $u@.service installed" true "$([ -s "/lib/systemd/system/$u@.service" ] && echo true || echo false)"
	check "man pages $u(8) and $u.conf(5)" true "$([ -s "/usr/share/man/man8/$u.8.gz" ] &&
		[ -s "/usr/share/man/man5/$u.conf.5.gz" ] && echo true || echo false)"
done
check "no unit enabled (no link to a qkd-ipsec unit under /etc/systemd)" "" \
	"$(find /etc/systemd -name '*qkd-sim*' -o -name '*kmsd*' -o -name '*ike-*' 2>/dev/null)"
check "libkmsclient.so.1 in the linker cache" 1 "$(ldconfig -p | grep -c 'libkmsclient.so.1 ')"
check "kmsclient.pc installed" true "$([ -s /usr/lib/x86_64-linux-gnu/pkgconfig/kmsclient.pc ] && echo true || echo false)"

# --- every shipped config passes its daemon's --check-config
n=0
for f in "$E"/*.conf; do
	case ${f##*/} in
	kme-*) d=qkd-sim ;; kmsd-*) d=kmsd ;; n3iwf-*) d=ike-n3iwf ;; ue-*) d=ike-ue ;; *) d=unknown ;;
	esac
	out=$("/usr/sbin/$d" --check-config "$f" 2>&1)
	check "$d --check-config ${f##*/} ($out)" 0 "$?"
	n=$((n + 1))
done
check "shipped configs checked" 7 "$n"

# --- the PKI the configs name, readable by the service user only
out=$(/usr/share/qkd-ipsec/mkcerts.sh $C 2>&1)
check "mkcerts.sh $C ($out)" 0 "$?"
chgrp qkd-ipsec $C/*.key && chmod 640 $C/*.key

# as CAPS PROG ARGS: as the unit runs it (user qkd-ipsec, its working
# directory, only the capabilities CAPS: "" or +net_bind_service,...). It
# execs: call it with & (the job's PID is then the daemon's) or in ( ).
as() {
	caps=$1; shift
	if [ -n "$caps" ]; then
		set -- --inh-caps "$caps" --ambient-caps "$caps" "$@"
	fi
	cd /var/lib/qkd-ipsec && exec setpriv --reuid=qkd-ipsec --regid=qkd-ipsec \
		--init-groups "$@"
}
# wait_ok SECONDS CMD...: until CMD succeeds
wait_ok() {
	t=$(($1 * 10)); shift
	while ! "$@" >/dev/null 2>&1; do
		t=$((t - 1)); [ $t -gt 0 ] || return 1; sleep 0.1
	done
}
# stop NAME PID: SIGTERM, then its exit status
stop() {
	kill -TERM "$2" 2>/dev/null
	wait "$2"; rc=$?
	check "$1 stops on SIGTERM with status 0" 0 "$rc"
}
kc() {	# SITE-CERT URL ARGS...: kmsclient as an SAE
	w=$1; u=$2; shift 2
	kmsclient --url "$u" --cert "$C/$w.crt" --key "$C/$w.key" --ca "$C/ca.crt" "$@"
}
# metric URL NAME: its value, or -1000 when absent (no arithmetic error)
metric() { curl -s --max-time 5 "$1/metrics" | awk -v m="$2" '$1 == m { print $2; f = 1 } END { if (!f) print -1000 }'; }

# --- qkd-sim A + B from kme-a.conf, kme-b.conf: a key at A is the same key at B
as "" /usr/sbin/qkd-sim --config $E/kme-a.conf 2>"$L/kme-a.log" & ka=$!
as "" /usr/sbin/qkd-sim --config $E/kme-b.conf 2>"$L/kme-b.log" & kb=$!
if wait_ok 20 kc sae-a https://127.0.0.1:8443 status sae-b; then
	ok "qkd-sim A answers Get status (the link to B is up)"
else
	nok "qkd-sim A does not answer: $(tail -n 3 "$L/kme-a.log")"
fi
kc sae-a https://127.0.0.1:8443 enc sae-b -n 2 >"$L/enc" 2>&1
check "enc_keys at qkd-sim A (sae-a): 2 keys ($(head -c 200 "$L/enc"))" 2 "$(grep -c . "$L/enc")"
# shellcheck disable=SC2046
kc sae-b https://127.0.0.1:8444 dec sae-a $(awk '{print $1}' "$L/enc") >"$L/dec" 2>&1
check "dec_keys at qkd-sim B (sae-b): the same IDs and bytes" "$(sort "$L/enc")" "$(sort "$L/dec")"
stop "qkd-sim A" "$ka"
stop "qkd-sim B" "$kb"

# --- kmsd A + B (each with its KME inside), then one qkd NWu connection
as "" /usr/sbin/kmsd --config $E/kmsd-a-sim.conf 2>"$L/kmsd-a.log" & ma=$!
as "" /usr/sbin/kmsd --config $E/kmsd-b-sim.conf 2>"$L/kmsd-b.log" & mb=$!
for s in a:9464 b:9465; do
	if wait_ok 30 curl -sf "http://127.0.0.1:${s#*:}/healthz"; then
		ok "kmsd ${s%%:*} healthy"
	else
		nok "kmsd ${s%%:*} not healthy: $(tail -n 3 "$L/kmsd-${s%%:*}.log")"
	fi
done
check "kmsd A: its pool under /var/lib/qkd-ipsec, owned by qkd-ipsec" "qkd-ipsec" \
	"$(stat -c %U /var/lib/qkd-ipsec/kmsd-a.db 2>&1)"
enc0=$(metric http://127.0.0.1:9464 'kmsd_keys_served_total{endpoint="enc_keys"}')
dec0=$(metric http://127.0.0.1:9465 'kmsd_keys_served_total{endpoint="dec_keys"}')
# RuntimeDirectory= of the unit
install -d -o qkd-ipsec -g qkd-ipsec -m 755 /run/ike-n3iwf-test
as +net_bind_service /usr/sbin/ike-n3iwf --config $E/n3iwf-qkd.conf \
	--ready-file /run/ike-n3iwf-test/ready 2>"$L/n3iwf.log" & n3=$!
if wait_ok 20 test -s /run/ike-n3iwf-test/ready; then
	ok "ike-n3iwf up on 127.0.0.1:500 as qkd-ipsec with CAP_NET_BIND_SERVICE only"
else
	nok "ike-n3iwf not up: $(tail -n 3 "$L/n3iwf.log")"
fi
(as +net_bind_service timeout 60 /usr/sbin/ike-ue --config $E/ue-qkd.conf --hold 1) 2>"$L/ue.log"
check "ike-ue (ue-qkd.conf, held 1 s) completes its connection ($(tail -n 2 "$L/ue.log" | tr '\n' ' '))" 0 "$?"
check "ike-ue: the IKE SA was established" 1 "$(grep -c 'established' "$L/ue.log" | awk '{print ($1 > 0)}')"
enc1=$(metric http://127.0.0.1:9464 'kmsd_keys_served_total{endpoint="enc_keys"}')
dec1=$(metric http://127.0.0.1:9465 'kmsd_keys_served_total{endpoint="dec_keys"}')
check "kmsd A served 13 keys (enc_keys) for the connection" 13 "$((enc1 - enc0))"
check "kmsd B served the same 13 (dec_keys)" 13 "$((dec1 - dec0))"
stop "ike-n3iwf" "$n3"
stop "kmsd A" "$ma"
stop "kmsd B" "$mb"
awk '{print $2}' "$L/enc" >"$L/keys.b64"
check "no key bytes in the daemons' logs (the base64 of qkd-sim A's keys)" 0 \
	"$(cat "$L"/*.log | grep -c -F -f "$L/keys.b64")"

# --- purge: the programs and the state go, the operator's certificates stay
apt-get purge -y -qq qkd-ipsec-common qkd-ipsec-sim qkd-ipsec-kmsd qkd-ipsec-ike \
	libkmsclient1 libkmsclient-dev >"$L/purge.log" 2>&1
check "apt-get purge of the six packages ($(tail -n 1 "$L/purge.log"))" 0 "$?"
check "purged: no program, unit, or shipped config left" "" \
	"$(ls /usr/sbin/kmsd /usr/sbin/qkd-sim /lib/systemd/system/kmsd@.service $E/*.conf 2>/dev/null)"
check "purged: /var/lib/qkd-ipsec (key pools) removed" false \
	"$([ -e /var/lib/qkd-ipsec ] && echo true || echo false)"
check "purged: the operator's certificates stay" true "$([ -s $C/ca.crt ] && echo true || echo false)"
finish
