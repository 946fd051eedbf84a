#!/bin/sh
# Key material in memory and on disk, seen from outside the daemons:
# - kmsd and qkd-sim refuse to start with a KEK file that is a symbolic
#   link, has mode 0644, or belongs to another user, naming the file and the
#   fix; a good KEK still works;
# - the running daemons keep a locked, undumpable arena (the kernel's
#   /proc/PID/smaps flags "lo" and "dd") and have no core file limit.
. "$(dirname "$0")/lib.sh"
# A low soft open-files limit: the daemons must raise it to the hard one
# (their connection limit needs ~460 descriptors).
ulimit -Sn 256 || { nok "cannot lower ulimit -n"; exit 1; }
tb_up

K=$TB/kek; mkdir -p "$K"
head -c 32 /dev/urandom >"$K/real"; chmod 600 "$K/real"

# refuse NAME WANT -- daemon args...: the daemon exits non-zero at once
# and its stderr has WANT.
refuse() {
	name=$1; want=$2; shift 3
	timeout 10 "$@" >"$K/out" 2>&1; rc=$?
	check "$name: refused to start" true "$([ $rc -ne 0 ] && [ $rc -ne 124 ] && echo true || echo false)"
	check_match "$name: names the file and the fix" "$want" "$(cat "$K/out")"
}

for d in kmsd qkd-sim; do
	if [ $d = kmsd ]; then
		run="$BINDIR/kmsd --config $TB/kmsd-a.conf --db $K/$d.db"
	else
		run="$BINDIR/qkd-sim --config $TB/kme-a.conf --listen 127.0.0.1:0 --db $K/$d.db"
	fi
	ln -sf "$K/real" "$K/$d.link"
	refuse "$d: symlinked kek_file" "kek_file $K/$d.link: is a symbolic link, which is refused: set kek_file to the file itself" -- \
		$run --kek-file "$K/$d.link"
	cp "$K/real" "$K/$d.0644"; chmod 644 "$K/$d.0644"
	refuse "$d: kek_file mode 0644" "kek_file $K/$d.0644: mode 0644, expected 0600: run chmod 600 $K/$d.0644" -- \
		$run --kek-file "$K/$d.0644"
	cp "$K/real" "$K/$d.other"; chmod 600 "$K/$d.other"; chown 65534 "$K/$d.other"
	refuse "$d: kek_file of another user" "kek_file $K/$d.other: owned by uid 65534, expected uid $(id -u) \\(the daemon's user\\): run chown $(id -u) $K/$d.other" -- \
		$run --kek-file "$K/$d.other"
	check "$d: the refused KEK files were left alone" "$(cat "$K/real" | od -An -tx1)" "$(od -An -tx1 "$K/$d.other")"
done

# The running daemons (started by the testbed, which never set a KEK's
# owner or mode by hand: they made their own).
for u in kmsd-a kme-a; do
	pid=$(cat "$TB/$u.pid")
	check_match "$u: a locked and undumpable mapping (smaps VmFlags lo, dd)" '^[1-9]' \
		"$(grep -E '^VmFlags:.* lo .*dd' "/proc/$pid/smaps" | wc -l)"
	check "$u: core file size limit 0" "0 0" \
		"$(awk '/^Max core file size/ { print $5, $6 }' "/proc/$pid/limits")"
	check "$u: soft open-files limit (256 inherited) raised to the hard one" \
		"$(awk '/^Max open files/ { print $5 }' "/proc/$pid/limits")" \
		"$(awk '/^Max open files/ { print $4 }' "/proc/$pid/limits")"
done
check "kmsd A made its KEK 0600, owned by its user" "600 $(id -u)" "$(stat -c '%a %u' "$TB/kmsd-a.kek")"

no_crash
