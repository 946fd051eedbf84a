#!/bin/sh
# mk/install.sh install|uninstall: what `make install` and `make uninstall`
# do, with the GNU directory variables the Makefile passes (prefix, bindir,
# sbindir, libdir, includedir, datadir, mandir, sysconfdir, localstatedir,
# unitdir, sysusersdir) under DESTDIR, from the build in BINDIR/BUILD.
#   sbindir     qkd-sim kmsd ike-n3iwf ike-ue
#   bindir      kmsclient
#   libdir      libkmsclient.so.1.0.0, .so.1, .so; pkgconfig/kmsclient.pc
#   includedir  qkd-ipsec/kmsclient/kmsclient.h, qkd-ipsec/common/etsi.h
#   sysconfdir  qkd-ipsec/*.conf: the shipped examples, with their paths
#               made absolute (certificates in sysconfdir/qkd-ipsec/certs,
#               state in localstatedir/lib/qkd-ipsec); a file already there
#               is kept (it is the operator's)
#   datadir     qkd-ipsec/mkcerts.sh (the test PKI)
#   mandir      man1, man5, man8
#   unitdir     qkd-sim@, kmsd@, ike-n3iwf@, ike-ue@.service
#   sysusersdir qkd-ipsec.conf (the qkd-ipsec user)
# uninstall removes what install put there, except the configs an operator
# may have changed: those that differ from the shipped ones stay.
set -eu
: "${prefix:?}" "${bindir:?}" "${sbindir:?}" "${libdir:?}" "${includedir:?}"
: "${datadir:?}" "${mandir:?}" "${sysconfdir:?}" "${localstatedir:?}"
: "${unitdir:?}" "${sysusersdir:?}" "${BINDIR:?}" "${BUILD:?}" "${KMSC_VERSION:?}"
D=${DESTDIR:-}
SO=libkmsclient.so
DAEMONS="qkd-sim kmsd ike-n3iwf ike-ue"
CONFS="simulator/examples/kme-a.conf simulator/examples/kme-b.conf
kmsd/examples/kmsd-a-sim.conf kmsd/examples/kmsd-b-sim.conf
kmsd/examples/kmsd-a-hw.conf ike/examples/n3iwf-qkd.conf ike/examples/ue-qkd.conf"
etc=$sysconfdir/qkd-ipsec
state=$localstatedir/lib/qkd-ipsec

say() { echo "install: $*"; }
# inst MODE SRC DIR [NAME]
inst() {
	mkdir -p "$D$3"
	install -m "$1" "$2" "$D$3/${4:-$(basename "$2")}"
}

# The example with its repository-relative paths made absolute.
conf() {
	sed -e "s|certs/mkcerts.sh certs/out|$datadir/qkd-ipsec/mkcerts.sh $etc/certs|" \
	    -e "s|certs/out/|$etc/certs/|g" \
	    -e "s|= state/|= $state/|" \
	    -e "s|mkdir -p -m 700 state|mkdir -p -m 700 $state|" \
	    -e "s|simulator/examples/|$etc/|g" \
	    -e "s|/etc/kmsd/|$etc/certs/|g" \
	    -e "s|/var/lib/kmsd|$state|g" \
	    -e "s|/var/lib/qkd-sim|$state|g" \
	    -e "s|Paths are relative to the repository root; make|Make|" \
	    -e "s|Run from the repository root after|Make the PKI and the state directory first:|" "$1"
}

unit() {
	sed -e "s|@sbindir@|$sbindir|g" -e "s|@sysconfdir@|$sysconfdir|g" "$1"
}

do_install() {
	for d in $DAEMONS; do inst 755 "$BINDIR/$d" "$sbindir"; done
	inst 755 "$BINDIR/kmsclient" "$bindir"
	inst 644 "$BUILD/lib/$SO.$KMSC_VERSION" "$libdir"
	ln -sf "$SO.$KMSC_VERSION" "$D$libdir/$SO.1"
	ln -sf "$SO.1" "$D$libdir/$SO"
	mkdir -p "$D$libdir/pkgconfig"
	sed -e "s|@prefix@|$prefix|" -e "s|@libdir@|$libdir|" \
	    -e "s|@includedir@|$includedir|" -e "s|@version@|$KMSC_VERSION|" \
	    kmsclient/kmsclient.pc.in >"$D$libdir/pkgconfig/kmsclient.pc"
	chmod 644 "$D$libdir/pkgconfig/kmsclient.pc"
	inst 644 kmsclient/kmsclient.h "$includedir/qkd-ipsec/kmsclient"
	inst 644 common/etsi.h "$includedir/qkd-ipsec/common"
	mkdir -p "$D$etc"
	for c in $CONFS; do
		t=$D$etc/$(basename "$c")
		if [ -e "$t" ]; then
			say "kept $t (already there)"
		else
			conf "$c" >"$t" && chmod 644 "$t"
		fi
	done
	inst 755 certs/mkcerts.sh "$datadir/qkd-ipsec"
	for p in build/man/*.1 build/man/*.5 build/man/*.8; do
		inst 644 "$p" "$mandir/man${p##*.}"
	done
	mkdir -p "$D$unitdir"
	for d in $DAEMONS; do
		unit "dist/systemd/$d@.service.in" >"$D$unitdir/$d@.service"
		chmod 644 "$D$unitdir/$d@.service"
	done
	inst 644 dist/sysusers/qkd-ipsec.conf "$sysusersdir"
	say "done (DESTDIR='$D' prefix=$prefix sysconfdir=$sysconfdir)"
}

do_uninstall() {
	for d in $DAEMONS; do
		rm -f "$D$sbindir/$d" "$D$unitdir/$d@.service" \
		    "$D$mandir/man8/$d.8" "$D$mandir/man5/$d.conf.5"
	done
	rm -f "$D$bindir/kmsclient" "$D$mandir/man1/kmsclient.1" \
	    "$D$libdir/$SO.$KMSC_VERSION" "$D$libdir/$SO.1" "$D$libdir/$SO" \
	    "$D$libdir/pkgconfig/kmsclient.pc" \
	    "$D$includedir/qkd-ipsec/kmsclient/kmsclient.h" \
	    "$D$includedir/qkd-ipsec/common/etsi.h" \
	    "$D$datadir/qkd-ipsec/mkcerts.sh" "$D$sysusersdir/qkd-ipsec.conf"
	rmdir "$D$includedir/qkd-ipsec/kmsclient" "$D$includedir/qkd-ipsec/common" \
	    "$D$includedir/qkd-ipsec" "$D$datadir/qkd-ipsec" 2>/dev/null || :
	for c in $CONFS; do
		t=$D$etc/$(basename "$c")
		[ -e "$t" ] || continue
		if conf "$c" | cmp -s - "$t"; then rm -f "$t"; else say "kept $t (changed)"; fi
	done
	rmdir "$D$etc" 2>/dev/null || :
	say "removed (DESTDIR='$D' prefix=$prefix)"
}

case ${1:-} in
install) do_install ;;
uninstall) do_uninstall ;;
*) echo "usage: mk/install.sh install|uninstall" >&2; exit 2 ;;
esac
