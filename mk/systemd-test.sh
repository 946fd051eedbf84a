#!/bin/sh
# `make systemd-test`: the shipped systemd units under a real systemd as
# PID 1. Stands alone like pkg-test (it needs the Debian mirror and takes a
# few minutes); not part of `make test` or .ci/run.
#   1. the .debs: mk/pkg-test.sh build (dpkg-buildpackage + lintian) into
#      build/deb/, or those already there with PKG_REUSE=1
#   2. a fresh Debian 12 root (mk/froot.sh, the root of fresh-test) with
#      systemd, the .debs and the test PKI (mkcerts.sh) installed by apt
#   3. systemd-nspawn -b boots it (systemd as PID 1 of its own PID, mount
#      and network namespaces; --private-network: only its own loopback),
#      then mk/systemd-steps.sh runs inside it (nsenter into the namespaces
#      of its PID 1): starts qkd-sim@, kmsd@, ike-n3iwf@ and ike-ue@ with
#      the shipped example configs, checks each one active, the UE's tunnel
#      keyed from both kmsd (13 keys counted at their /metrics), `systemctl
#      reload` of kmsd, the hardening (user, capabilities, seccomp, what is
#      writable) and a clean stop
#   4. systemctl poweroff: the container must shut down with status 0
# FRESH_KEEP=1 keeps the root (and the container's log) for a look. Needs
# root and systemd-nspawn (mk/deps.sh systemd installs systemd-container).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
OUT=$top/build/deb
MACHINE=qkd-systemd-test
export DEBIAN_FRONTEND=noninteractive

say() { echo "systemd-test: [$(date -u +%T)] $*" >&2; }
die() { say "FAILED: $*"; exit 1; }
. "$top/mk/froot.sh"

[ "$(id -u)" -eq 0 ] || die "needs root (apt, chroot, systemd-nspawn)"
sh "$top/mk/deps.sh" systemd || die "mk/deps.sh systemd failed"
command -v systemd-nspawn >/dev/null 2>&1 || die "systemd-nspawn missing"

NSPAWN=""
cleanup() {
	rc=$?
	if [ -n "$NSPAWN" ] && kill -0 "$NSPAWN" 2>/dev/null; then
		say "the container still runs: killing systemd-nspawn $NSPAWN"
		kill -TERM "$NSPAWN" 2>/dev/null || :
		sleep 5
		kill -KILL "$NSPAWN" 2>/dev/null || :
		wait "$NSPAWN" 2>/dev/null || :
	fi
	froot_cleanup
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
t0=$(date +%s)

# --- 1. the packages
if [ "${PKG_REUSE:-}" = 1 ]; then
	ls "$OUT"/*.deb >/dev/null 2>&1 || die "PKG_REUSE=1: no .deb in $OUT (make pkg)"
	say "reusing the packages in $OUT (PKG_REUSE=1)"
else
	sh "$top/mk/pkg-test.sh" build || die "make pkg"
fi
debs=""
for d in "$OUT"/*.deb; do
	case $d in *dbgsym*) ;; *) debs="$debs ${d##*/}" ;; esac
done

# --- 2. the root: systemd, the packages, the test PKI
froot_base
froot_new
mkdir -p "$FROOT/root/debs"
for d in $debs; do cp "$OUT/$d" "$FROOT/root/debs/"; done
cp "$top/mk/systemd-steps.sh" "$FROOT/root/systemd-steps.sh"
say "installing systemd and the packages into $FROOT"
# systemd: the init that boots; curl, iproute2, procps, util-linux (ss,
# pgrep, nsenter, setpriv): the steps' own tools, not the packages' needs.
froot_run "apt-get update -qq
	apt-get install -y -qq --no-install-recommends systemd /root/debs/*.deb \
		curl iproute2 procps util-linux >/root/apt.log 2>&1 ||
		{ tail -n 20 /root/apt.log; exit 1; }
	/usr/share/qkd-ipsec/mkcerts.sh /etc/qkd-ipsec/certs >/root/mkcerts.log 2>&1 ||
		{ cat /root/mkcerts.log; exit 1; }
	chgrp qkd-ipsec /etc/qkd-ipsec/certs/*.key
	chmod 640 /etc/qkd-ipsec/certs/*.key
	# a booted machine has its own id; nspawn would make a transient one
	systemd-machine-id-setup >/dev/null" || die "installing into the root"
t1=$(date +%s)

# --- 3. boot it, run the steps in it
say "booting $FROOT with systemd-nspawn -b"
log=$FROOT/root/nspawn.log
# --register=no, --keep-unit: no machined and no host systemd to ask
# (PID 1 here is no systemd); --private-network: only its own loopback,
# so the example configs' fixed ports meet nobody.
SYSTEMD_COLORS=0 systemd-nspawn -q -D "$FROOT" -b -M "$MACHINE" \
	--register=no --keep-unit --private-network >"$log" 2>&1 </dev/null &
NSPAWN=$!
# its PID 1: the child of systemd-nspawn that is 1 in its own PID namespace
leader=""
i=0
while [ -z "$leader" ]; do
	for c in $(pgrep -P "$NSPAWN" 2>/dev/null); do
		grep -Eq '^NSpid:[[:space:]]+[0-9]+[[:space:]]+1$' "/proc/$c/status" 2>/dev/null &&
			leader=$c
	done
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$NSPAWN" 2>/dev/null; then
		tail -n 20 "$log" >&2
		die "no systemd came up in the container"
	fi
	[ -n "$leader" ] || sleep 0.2
done
inside() { nsenter -t "$leader" -m -u -i -n -p -- "$@"; }
# its manager's socket first (systemctl talks to it, no D-Bus needed)
i=0
until inside test -S /run/systemd/private 2>/dev/null; do
	i=$((i + 1))
	if [ $i -ge 300 ] || ! kill -0 "$NSPAWN" 2>/dev/null; then
		tail -n 20 "$log" >&2
		die "no /run/systemd/private in the container"
	fi
	sleep 0.2
done
state=$(inside timeout 120 systemctl is-system-running --wait 2>&1) || :
if [ "$state" != running ]; then
	inside systemctl --no-pager --failed >&2 || :
	die "the container's systemd is \"$state\", not running"
fi
say "systemd $(inside systemctl --version | sed -n '1s/^systemd //p') is PID 1 in the container: running after $(($(date +%s) - t1)) s"
set +e
inside env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
	sh /root/systemd-steps.sh
rc=$?
set -e

# --- 4. power off
# (what systemctl poweroff does when no logind answers on D-Bus)
inside systemctl start --no-block --job-mode=replace-irreversibly poweroff.target ||
	die "systemctl start poweroff.target"
i=0
while kill -0 "$NSPAWN" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 120 ] || die "the container did not power off within 60 s"
	sleep 0.5
done
nrc=0
wait "$NSPAWN" || nrc=$?
NSPAWN=""
[ "$nrc" -eq 0 ] || { tail -n 20 "$log" >&2; die "systemd-nspawn exited $nrc after poweroff"; }
say "ok: the container powered off, systemd-nspawn exited 0"
[ "$rc" -eq 0 ] || die "steps under systemd (see the not ok lines above)"
say "PASSED in $(($(date +%s) - t0)) s (root $((t1 - t0)) s, boot, steps and poweroff $(($(date +%s) - t1)) s)"
