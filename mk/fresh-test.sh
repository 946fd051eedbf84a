#!/bin/sh
# `make fresh-test`: does a clean Debian 12 machine pass the README's test
# command? Builds (once, cached) a minimal Debian 12 root with debootstrap,
# unpacks a pristine copy of it for every run, copies in only the committed
# tree (git archive HEAD: uncommitted edits and untracked files stay out),
# installs `make` (what a new user installs next to git to clone and run
# the README) and runs FRESH_CMD (default `make WERROR=1 test`) in it as
# root, the copy made the root of a private mount namespace (pivot_root,
# so that a container engine works in it) with /proc, /sys and
# /dev (with /dev/net/tun and /dev/pts): the tests make network namespaces.
# A package installed by hand on this host is missing there, so the test
# that needs it fails here first.
#
# FRESH_CACHE (default /var/cache/qkd-fresh) holds the debootstrap base as
# a tarball; delete it to rebuild. FRESH_MIRROR overrides the Debian mirror
# (default: the first one in /etc/apt/sources.list{,.d/*}). FRESH_KEEP=1
# keeps the root for a look after the run. Needs root. The root itself is
# mk/froot.sh's, shared with mk/pkg-test.sh.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
CMD=${FRESH_CMD:-make WERROR=1 test}
export DEBIAN_FRONTEND=noninteractive

say() { echo "fresh-test: $*" >&2; }
die() { say "$*"; exit 1; }
. "$top/mk/froot.sh"

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, network namespaces)"
git -C "$top" rev-parse --verify -q HEAD >/dev/null ||
	die "$top is not a git checkout with a commit: nothing committed to test"

froot_base
trap froot_cleanup EXIT
trap 'exit 130' INT TERM

t0=$(date +%s)
froot_new
mkdir -p "$FROOT/root/qkd-ipsec"
git -C "$top" archive HEAD | tar -C "$FROOT/root/qkd-ipsec" -xf -
say "testing commit $(git -C "$top" rev-parse --short HEAD) in $FROOT"

set +e
froot_run "apt-get update -qq
	apt-get install -y -qq --no-install-recommends make >/dev/null
	cd /root/qkd-ipsec
	$CMD"
rc=$?
set -e
say "\`$CMD\` exited $rc after $(($(date +%s) - t0)) s"
exit "$rc"
