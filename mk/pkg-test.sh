#!/bin/sh
# `make pkg-test`: the Debian packages, built and used as an operator
# would. Stands alone like fresh-test (it needs the Debian mirror and takes
# a few minutes); `make pkg` does the first two steps only.
#   1. dpkg-buildpackage -us -uc -b on the committed tree (git archive
#      HEAD; PKG_WORKTREE=1 takes the working tree's files instead), in a
#      temp dir; the .debs are copied to build/deb/
#   2. lintian --pedantic on them: any tag that debian/*.lintian-overrides
#      does not explain fails
#   3. apt-get install of the .debs into a fresh Debian 12 root (mk/froot.sh,
#      the root of fresh-test), then mk/pkg-steps.sh in it, in a network
#      namespace of its own: the user, the conffiles, the units left
#      disabled, --check-config on every shipped config, a testbed from the
#      installed paths (qkd-sim A+B; kmsd A+B with their KMEs; one qkd NWu
#      connection ike-ue -> ike-n3iwf, keys counted at both kmsd), purge.
# PKG_REUSE=1 skips 1 and 2 and installs the .debs already in build/deb/.
# Fails loudly on the first broken step. Needs root.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-test}
OUT=$top/build/deb
export DEBIAN_FRONTEND=noninteractive

say() { echo "pkg-test: $*" >&2; }
die() { say "FAILED: $*"; exit 1; }
. "$top/mk/froot.sh"

[ "$(id -u)" -eq 0 ] || die "needs root (apt, chroot, network namespaces)"
for t in dpkg-buildpackage dh lintian; do
	command -v "$t" >/dev/null 2>&1 || die "$t missing: run \`make deps\` (mk/deps.sh)"
done

W=$(mktemp -d /var/tmp/qkd-pkg.XXXXXX)
cleanup() {
	froot_cleanup
	if [ "${FRESH_KEEP:-}" = 1 ]; then say "build kept in $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
t0=$(date +%s)

# --- 1. build
build_debs() {
	mkdir -p "$W/qkd-ipsec" "$OUT"
	if [ "${PKG_WORKTREE:-}" = 1 ]; then
		say "building the working tree's files (PKG_WORKTREE=1)"
		(cd "$top" && git ls-files -co --exclude-standard -z) |
			(cd "$top" && tar --null -cf - -T -) | tar -C "$W/qkd-ipsec" -xf -
	else
		git -C "$top" rev-parse --verify -q HEAD >/dev/null || die "no commit to build"
		say "building commit $(git -C "$top" rev-parse --short HEAD)"
		git -C "$top" archive HEAD | tar -C "$W/qkd-ipsec" -xf -
	fi
	rm -f "$OUT"/*.deb
	if ! (cd "$W/qkd-ipsec" && dpkg-buildpackage -us -uc -b) >"$OUT/build.log" 2>&1; then
		tail -n 15 "$OUT/build.log" >&2
		die "dpkg-buildpackage (log: $OUT/build.log)"
	fi
	cp "$W"/*.deb "$OUT/"
}

# --- 2. lintian: no tag at all that the overrides do not explain
lint_debs() {
	if ! lintian --pedantic --display-info --fail-on error,warning,info,pedantic \
		"$W"/qkd-ipsec_*.changes >"$OUT/lintian.log" 2>&1; then
		cat "$OUT/lintian.log" >&2
		die "lintian (log: $OUT/lintian.log)"
	fi
	say "lintian --pedantic: clean ($(grep -c '^O:' "$OUT/lintian.log") overridden tags)"
}

if [ "${PKG_REUSE:-}" = 1 ]; then
	ls "$OUT"/*.deb >/dev/null 2>&1 || die "PKG_REUSE=1: no .deb in $OUT (make pkg)"
	say "reusing the packages in $OUT (PKG_REUSE=1)"
else
	build_debs
	lint_debs
fi
debs=$(cd "$OUT" && ls ./*.deb | grep -v dbgsym | sed 's|^\./||')
say "packages in $OUT: $(echo $debs)"
[ "$mode" = build ] && exit 0

# --- 3. a fresh Debian 12 root: install with apt, run the steps
froot_base
froot_new
mkdir -p "$FROOT/root/debs"
for d in $debs; do cp "$OUT/$d" "$FROOT/root/debs/"; done
cp "$top/mk/pkg-steps.sh" "$FROOT/root/pkg-steps.sh"
say "installing into $FROOT and running mk/pkg-steps.sh"
# curl, iproute2, procps: the steps' own tools, not the packages' needs.
set +e
froot_run "apt-get update -qq
	apt-get install -y -qq --no-install-recommends /root/debs/*.deb \
		curl iproute2 procps >/root/apt.log 2>&1 ||
		{ tail -n 20 /root/apt.log; echo 'not ok - apt-get install of the packages'; exit 1; }
	echo 'ok - apt-get install of the packages and their dependencies'
	unshare -n sh /root/pkg-steps.sh"
rc=$?
set -e
say "$(($(date +%s) - t0)) s"
[ "$rc" -eq 0 ] || die "steps in the fresh root (see the not ok lines above)"
say "passed"
