#!/bin/sh
# The example configs the READMEs point to: each passes its daemon's
# --check-config, and none keeps state (databases, KEK files) under /tmp,
# where it would not survive a reboot and other users could reach it.
. "$(dirname "$0")/lib.sh"

n=0
for f in kmsd/examples/*.conf simulator/examples/*.conf; do
	case $f in kmsd/*) d=kmsd ;; *) d=qkd-sim ;; esac
	out=$("$BINDIR/$d" --check-config "$f" 2>&1); rc=$?
	check "$d --check-config $f: exit 0 ($out)" 0 "$rc"
	check "$f: no path under /tmp" "" \
		"$(grep -nE '^[^#;]*=[[:space:]]*/tmp(/|$)' "$f" | tr '\n' ' ')"
	n=$((n + 1))
done
check "example configs found (kmsd 3, qkd-sim 2)" true "$([ $n -ge 5 ] && echo true || echo false)"
# The IKE examples (make install ships them to /etc/qkd-ipsec with the
# others): the N3IWF's and the UE's each pass their own --check-config.
for f in ike/examples/n3iwf-*.conf ike/examples/ue-*.conf; do
	case ${f##*/} in n3iwf-*) d=ike-n3iwf ;; *) d=ike-ue ;; esac
	out=$("$BINDIR/$d" --check-config "$f" 2>&1); rc=$?
	check "$d --check-config $f: exit 0 ($out)" 0 "$rc"
done
