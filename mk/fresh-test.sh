#!/bin/sh
# `make fresh-test`: does a clean Debian 12 machine pass the README's test
# command? Builds (once, cached) a minimal Debian 12 root with debootstrap,
# unpacks a pristine copy of it for every run, copies in only the committed
# tree (git archive HEAD: uncommitted edits and untracked files stay out),
# installs `make` (what a new user installs next to git to clone and run
# the README) and runs FRESH_CMD (default `make WERROR=1 test`) in it as
# root, in a chroot inside a private mount namespace with /proc, /sys and
# /dev (with /dev/net/tun and /dev/pts): the tests make network namespaces.
# A package installed by hand on this host is missing there, so the test
# that needs it fails here first.
#
# FRESH_CACHE (default /var/cache/qkd-fresh) holds the debootstrap base as
# a tarball; delete it to rebuild. FRESH_MIRROR overrides the Debian mirror
# (default: the first one in /etc/apt/sources.list{,.d/*}). FRESH_KEEP=1
# keeps the root for a look after the run. Needs root.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${FRESH_CACHE:-/var/cache/qkd-fresh}
BASE=$CACHE/bookworm-minbase.tar
CMD=${FRESH_CMD:-make WERROR=1 test}
export DEBIAN_FRONTEND=noninteractive

say() { echo "fresh-test: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, network namespaces)"
git -C "$top" rev-parse --verify -q HEAD >/dev/null ||
	die "$top is not a git checkout with a commit: nothing committed to test"

# The Debian mirror this host uses: deb822 "URIs:" or one-line "deb URI".
mirror() {
	[ -n "${FRESH_MIRROR:-}" ] && { echo "$FRESH_MIRROR"; return; }
	m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list.d/*.sources 2>/dev/null |
		sed -n -e 's/^URIs:[[:space:]]*//p' \
			-e 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]*\)\{0,1\}//p' |
		tr ' \t' '\n\n' | grep -E '^https?://.*/debian/?$' | head -n 1)
	echo "${m:-http://deb.debian.org/debian}"
}
MIRROR=$(mirror)
SECURITY=$(printf '%s' "$MIRROR" | sed 's,/debian/*$,/debian-security,')

if ! command -v debootstrap >/dev/null 2>&1; then
	say "installing debootstrap"
	apt-get update -qq && apt-get install -y -qq --no-install-recommends \
		debootstrap >/dev/null || die "apt-get install debootstrap failed"
fi

if [ ! -s "$BASE" ]; then
	mkdir -p "$CACHE"
	dir=$CACHE/debootstrap.$$
	rm -rf "$dir"
	say "debootstrap --variant=minbase bookworm from $MIRROR (once; cached in $BASE)"
	if ! debootstrap --variant=minbase bookworm "$dir" "$MIRROR" \
		>"$CACHE/debootstrap.log" 2>&1; then
		tail -n 5 "$CACHE/debootstrap.log" >&2
		rm -rf "$dir"
		die "debootstrap failed (log: $CACHE/debootstrap.log)"
	fi
	tar -C "$dir" --numeric-owner -cpf "$BASE.tmp" . && mv "$BASE.tmp" "$BASE"
	rm -rf "$dir"
fi

ROOT=$(mktemp -d /var/tmp/qkd-fresh.XXXXXX)
cleanup() {
	# Anything a test left running in the root (by process id, nothing else)
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && kill -KILL "${p#/proc/}" 2>/dev/null
	done
	# The mounts live in the private namespace below and vanish with it; a
	# stale mount here would make rm walk into /proc or /dev, so check.
	if grep -qE " $ROOT(/| )" /proc/self/mounts; then
		say "mounts still under $ROOT; not removing it"
	elif [ "${FRESH_KEEP:-}" = 1 ]; then
		say "root kept in $ROOT"
	else
		rm -rf "$ROOT"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

t0=$(date +%s)
tar -C "$ROOT" --numeric-owner -xpf "$BASE"
mkdir -p "$ROOT/root/qkd-ipsec"
git -C "$top" archive HEAD | tar -C "$ROOT/root/qkd-ipsec" -xf -
say "testing commit $(git -C "$top" rev-parse --short HEAD) in $ROOT"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# The suites a Debian 12 install has (main, updates, security).
cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY bookworm-security main
EOF
# As in Debian's container images: packages do not start services here.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"

# unshare -m makes every mount below private to this command: they go away
# when it exits, however it exits, and the host never sees them.
set +e
unshare -m --propagation private sh -eu -c '
	r=$1; cmd=$2
	# The root must be a mount point: `ip netns exec` and `ip -n` remount
	# / (make-rslave), which fails on a plain directory.
	mount --bind "$r" "$r"
	mount -t proc proc "$r/proc"
	mount --rbind /sys "$r/sys"
	mount --rbind /dev "$r/dev"
	mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
	mount -t tmpfs -o mode=755 tmpfs "$r/run"
	exec chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
		DEBIAN_FRONTEND=noninteractive \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		sh -c "set -e
			apt-get update -qq
			apt-get install -y -qq --no-install-recommends make >/dev/null
			cd /root/qkd-ipsec
			$cmd"
' fresh "$ROOT" "$CMD"
rc=$?
set -e
say "\`$CMD\` exited $rc after $(($(date +%s) - t0)) s"
exit "$rc"
