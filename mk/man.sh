#!/bin/sh
# mk/man.sh PROG 8|5 BINDIR OUT: one manual page of a daemon, its text from
# man/PROG.8.head or man/PROG.conf.5.head and its option and setting lists
# from `PROG --help-man`, which writes them from the config table the
# parser uses (common/cfg.h). Section 8 gets the OPTIONS and CONFIGURATION
# sections, section 5 (the config file) CONFIGURATION only; both end in
# FILES and SEE ALSO.
set -eu
prog=$1; sect=$2; bindir=$3; out=$4
esc=$(printf '%s' "$prog" | sed 's/-/\\-/g')
{
	if [ "$sect" = 8 ]; then
		cat "man/$prog.8.head"
		"$bindir/$prog" --help-man
	else
		cat "man/$prog.conf.5.head"
		"$bindir/$prog" --help-man | sed -n '/^\.SH CONFIGURATION$/,$p'
	fi
	cat <<ROFF
.SH FILES
.TP
.I /etc/qkd\\-ipsec/*.conf
configuration files (examples shipped by the package)
.TP
.I /lib/systemd/system/$esc@.service
the systemd unit: \\fB$esc@NAME\\fR runs it with /etc/qkd\\-ipsec/NAME.conf
.SH SEE ALSO
ROFF
	if [ "$sect" = 8 ]; then
		echo ".BR $esc.conf (5),"
	else
		echo ".BR $esc (8),"
	fi
	for p in kmsd qkd-sim ike-n3iwf ike-ue; do
		[ "$p" = "$prog" ] || echo ".BR $(printf '%s' "$p" | sed 's/-/\\-/g') (8),"
	done
	echo ".BR kmsclient (1),"
	echo ".BR systemd.exec (5)"
} >"$out.tmp"
mv "$out.tmp" "$out"
