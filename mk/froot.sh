# Sourced by mk/fresh-test.sh and mk/pkg-test.sh: a fresh, minimal Debian 12
# root to run something in, as a clean machine would. Needs root; the
# caller defines say() and die().
#
#   froot_base         the debootstrap base, built once and cached as
#                      FRESH_CACHE/bookworm-minbase.tar (FRESH_CACHE default
#                      /var/cache/qkd-fresh; delete the tarball to rebuild)
#                      from the host's Debian mirror (FRESH_MIRROR overrides)
#   froot_new          a pristine copy of it in a new directory, $FROOT, with
#                      apt's main, updates and security suites and a
#                      policy-rc.d that keeps packages from starting services
#   froot_run SCRIPT   SCRIPT (sh) as root in $FROOT, made the root of a
#                      private mount namespace (pivot_root), with /proc, /sys, /dev
#                      (/dev/net/tun, /dev/pts), tmpfs /tmp and /run, a
#                      clean environment; the mounts vanish when it exits
#   froot_cleanup      kills what still runs in $FROOT (by process id) and
#                      removes it (FRESH_KEEP=1 keeps it for a look)
FRESH_CACHE=${FRESH_CACHE:-/var/cache/qkd-fresh}
FRESH_BASE=$FRESH_CACHE/bookworm-minbase.tar
FROOT=""

# The Debian mirror this host uses: deb822 "URIs:" or one-line "deb URI".
froot_mirror() {
	[ -n "${FRESH_MIRROR:-}" ] && { echo "$FRESH_MIRROR"; return; }
	m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list.d/*.sources 2>/dev/null |
		sed -n -e 's/^URIs:[[:space:]]*//p' \
			-e 's/^deb[[:space:]]\{1,\}\(\[[^]]*\][[:space:]]*\)\{0,1\}//p' |
		tr ' \t' '\n\n' | grep -E '^https?://.*/debian/?$' | head -n 1)
	echo "${m:-http://deb.debian.org/debian}"
}

froot_base() {
	_mirror=$(froot_mirror)
	if ! command -v debootstrap >/dev/null 2>&1; then
		say "installing debootstrap"
		apt-get update -qq && apt-get install -y -qq --no-install-recommends \
			debootstrap >/dev/null || die "apt-get install debootstrap failed"
	fi
	[ -s "$FRESH_BASE" ] && return 0
	mkdir -p "$FRESH_CACHE"
	_dir=$FRESH_CACHE/debootstrap.$$
	rm -rf "$_dir"
	say "debootstrap --variant=minbase bookworm from $_mirror (once; cached in $FRESH_BASE)"
	if ! debootstrap --variant=minbase bookworm "$_dir" "$_mirror" \
		>"$FRESH_CACHE/debootstrap.log" 2>&1; then
		tail -n 5 "$FRESH_CACHE/debootstrap.log" >&2
		rm -rf "$_dir"
		die "debootstrap failed (log: $FRESH_CACHE/debootstrap.log)"
	fi
	tar -C "$_dir" --numeric-owner -cpf "$FRESH_BASE.tmp" . &&
		mv "$FRESH_BASE.tmp" "$FRESH_BASE"
	rm -rf "$_dir"
}

froot_new() {
	FROOT=$(mktemp -d /var/tmp/qkd-fresh.XXXXXX)
	tar -C "$FROOT" --numeric-owner -xpf "$FRESH_BASE"
	cp /etc/resolv.conf "$FROOT/etc/resolv.conf"
	_mirror=$(froot_mirror)
	_sec=$(printf '%s' "$_mirror" | sed 's,/debian/*$,/debian-security,')
	# The suites a Debian 12 install has (main, updates, security).
	cat >"$FROOT/etc/apt/sources.list" <<EOT
deb $_mirror bookworm main
deb $_mirror bookworm-updates main
deb $_sec bookworm-security main
EOT
	# As in Debian's container images: packages do not start services here.
	printf '#!/bin/sh\nexit 101\n' >"$FROOT/usr/sbin/policy-rc.d"
	chmod 755 "$FROOT/usr/sbin/policy-rc.d"
}

froot_cleanup() {
	[ -n "$FROOT" ] && [ -d "$FROOT" ] || return 0
	# Anything a test left running in the root (by process id, nothing
	# else): its processes share the mount namespace of a froot_run
	# (recorded in $FROOT.mntns; their root reads "/" from here)
	touch "$FROOT.mntns"
	for p in /proc/[0-9]*; do
		grep -qxF "$(readlink "$p/ns/mnt" 2>/dev/null)" "$FROOT.mntns" &&
			kill -KILL "${p#/proc/}" 2>/dev/null
	done
	rm -f "$FROOT.mntns"
	# The mounts live in the private namespace of froot_run and vanish
	# with it; a stale mount here would make rm walk into /proc or /dev.
	if grep -qE " $FROOT(/| )" /proc/self/mounts; then
		say "mounts still under $FROOT; not removing it"
	elif [ "${FRESH_KEEP:-}" = 1 ]; then
		say "root kept in $FROOT"
	else
		rm -rf "$FROOT"
	fi
}

# unshare -m makes every mount below private to this command: they go away
# when it exits, however it exits, and the host never sees them.
froot_run() {
	unshare -m --propagation private sh -eu -c '
		r=$1; cmd=$2
		readlink /proc/self/ns/mnt >>"$r.mntns"
		# The root must be a mount point: `ip netns exec` and `ip -n`
		# remount / (make-rslave), which fails on a plain directory.
		mount --bind "$r" "$r"
		mount -t proc proc "$r/proc"
		mount --rbind /sys "$r/sys"
		mount --rbind /dev "$r/dev"
		mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
		mount -t tmpfs -o mode=755 tmpfs "$r/run"
		# The root becomes the root of this mount namespace (pivot_root),
		# not just of this process (chroot): a container engine in it
		# pivots into its containers, and `runc exec` (podman exec, the
		# healthchecks) enters a container through setns, which sets the
		# namespace root. After a bare chroot that root is the host
		# filesystem, and every exec failed with "chdir to cwd ... no
		# such file or directory".
		cd "$r"
		pivot_root . mnt
		umount -l /mnt
		exec chroot . /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
			DEBIAN_FRONTEND=noninteractive \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			sh -c "set -e
				$cmd"
	' froot "$FROOT" "$1"
}
