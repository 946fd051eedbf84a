#!/bin/sh
# mk/man-check.sh PAGE...: each manual page renders without a single
# warning from groff (-ww: all of them), from man-db (man -l, as a user
# reads it, with its own warnings on) and has a NAME section lexgrog can
# read (what apropos and whatis index). Fails on the first complaint.
set -u
rc=0
for p in "$@"; do
	w=$(groff -man -ww -z -Tutf8 "$p" 2>&1)
	[ -z "$w" ] || { echo "man-check: groff warns on $p: $w" >&2; rc=1; }
	w=$(MANWIDTH=80 MAN_KEEP_STDERR=1 man --warnings=all -l "$p" 2>&1 >/dev/null)
	[ -z "$w" ] || { echo "man-check: man -l warns on $p: $w" >&2; rc=1; }
	lexgrog "$p" >/dev/null 2>&1 || { echo "man-check: lexgrog cannot parse $p" >&2; rc=1; }
done
[ $rc -eq 0 ] && echo "man-check: $# pages clean"
exit $rc
