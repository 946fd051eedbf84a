#!/bin/sh
# `make install` as a packager and an operator use it: staged with DESTDIR
# and PREFIX=/usr (the Debian layout), checked file by file; the shared
# libkmsclient (soname, symlinks, only its public API exported); a C
# program built from the installed copy with `pkg-config --cflags --libs
# kmsclient` that gets keys from a real qkd-sim, the same keys fetched at
# the other KME; every installed example config passes its daemon's
# --check-config; the man pages render without a warning; the systemd units
# pass `systemd-analyze verify` and keep their sandbox; `make uninstall`
# leaves nothing behind.
. "$(dirname "$0")/lib.sh"

SANARG=""; PROGSAN=""
if [ "${BUILD:-build}" = build-san ]; then
	SANARG="SAN=1"; PROGSAN="-fsanitize=address,undefined"
fi
D=$TB/stage
# shellcheck disable=SC2086
out=$(make -s --no-print-directory -C "$top" $SANARG install DESTDIR="$D" PREFIX=/usr 2>&1)
check "make install DESTDIR PREFIX=/usr: exit 0 ($(printf '%s' "$out" | tail -n 2))" 0 "$?"

# --- the files, where Debian wants them
for f in usr/sbin/qkd-sim usr/sbin/kmsd usr/sbin/ike-n3iwf usr/sbin/ike-ue usr/bin/kmsclient; do
	check "$f installed, executable" true "$(yes_no test -x "$D/$f")"
done
for f in usr/include/qkd-ipsec/kmsclient/kmsclient.h usr/include/qkd-ipsec/common/etsi.h \
	usr/lib/pkgconfig/kmsclient.pc usr/share/qkd-ipsec/mkcerts.sh \
	usr/lib/sysusers.d/qkd-ipsec.conf usr/share/man/man1/kmsclient.1; do
	check "$f installed" true "$(yes_no test -s "$D/$f")"
done
for u in qkd-sim kmsd ike-n3iwf ike-ue; do
	check "unit $u@.service in /lib/systemd/system" true \
		"$(yes_no test -s "$D/lib/systemd/system/$u@.service")"
	check "man pages $u.8 and $u.conf.5" true \
		"$(yes_no test -s "$D/usr/share/man/man8/$u.8" -a -s "$D/usr/share/man/man5/$u.conf.5")"
done
check "configs in /etc/qkd-ipsec (7 examples)" 7 "$(ls "$D/etc/qkd-ipsec"/*.conf 2>/dev/null | wc -l)"
check "no repository-relative path left in the installed configs" "" \
	"$(grep -lE '(^|[= ])(certs/out|state|simulator/examples)/' "$D/etc/qkd-ipsec"/*.conf)"

# --- the shared library
L=$D/usr/lib
check "libkmsclient.so -> libkmsclient.so.1" libkmsclient.so.1 "$(readlink "$L/libkmsclient.so")"
check "libkmsclient.so.1 -> libkmsclient.so.1.0.0" libkmsclient.so.1.0.0 "$(readlink "$L/libkmsclient.so.1")"
check "SONAME is libkmsclient.so.1" "libkmsclient.so.1" \
	"$(readelf -d "$L/libkmsclient.so.1.0.0" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
syms=$(nm -D --defined-only "$L/libkmsclient.so.1.0.0" | awk '$2 != "A" {print $3}' | sed 's/@.*//')
check "exported: only kms_* and etsi_* (the public headers)" "" \
	"$(printf '%s\n' "$syms" | grep -vE '^(kms_|etsi_)' | tr '\n' ' ')"
check "exported: the 13 kms_* functions of kmsclient.h" 13 "$(printf '%s\n' "$syms" | grep -c '^kms_')"
check "common/ internals stay hidden (log_, buf_, sec_alloc)" 0 \
	"$(printf '%s\n' "$syms" | grep -cE '^(log_|buf_|sec_)')"
check "symbols are versioned KMSCLIENT_1.0" true \
	"$(yes_no sh -c "nm -D --defined-only '$L/libkmsclient.so.1.0.0' | grep -q 'kms_client_new@@KMSCLIENT_1.0'")"

# --- a program of someone else's, against the installed copy
export PKG_CONFIG_PATH="$L/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$D"
pc=$(pkg-config --cflags --libs kmsclient 2>&1)
check_match "pkg-config --cflags --libs kmsclient" "^-I$D/usr/include/qkd-ipsec .*-L$D/usr/lib +-lkmsclient" "$pc"
# shellcheck disable=SC2086
out=$(cc -std=c11 -Wall -Werror $PROGSAN -o "$TB/kmsc_demo" "$top/tests/pkg/kmsc_demo.c" $pc 2>&1)
check "cc kmsc_demo.c \$(pkg-config --cflags --libs kmsclient) ($out)" 0 "$?"
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
check "kmsc_demo links the installed libkmsclient.so.1" "$L/libkmsclient.so.1" \
	"$(LD_LIBRARY_PATH=$L ldd "$TB/kmsc_demo" | sed -n 's/.*libkmsclient.so.1 => \([^ ]*\) .*/\1/p')"

NO_KMSD=1 tb_up
LD_LIBRARY_PATH=$L "$TB/kmsc_demo" "$KME_A_URL" "$SAE_A_CERT" "$SAE_A_KEY" "$CA" sae-b \
	>"$TB/demo.out" 2>"$TB/demo.err"
check "kmsc_demo against qkd-sim A: exit 0 ($(cat "$TB/demo.err"))" 0 "$?"
check_match "kmsc_demo: status from KME A" '^status stored=[0-9]+ key_size=256$' "$(head -n 1 "$TB/demo.out")"
check "kmsc_demo: two keys" 2 "$(grep -c '^key ' "$TB/demo.out")"
# The same keys, fetched by sae-b at KME B with curl: the bytes match.
grep '^key ' "$TB/demo.out" | while read -r _ id hex; do
	r=$(sae_curl B "$KME_B_URL/api/v1/keys/sae-a/dec_keys?key_ID=$id")
	b=$(http_body "$r" | jq -r '.keys[0].key' | base64 -d | od -An -tx1 | tr -d ' \n')
	check "key $id: KME B (dec_keys by sae-b) holds the same 256 bits" "$hex" "$b"
done

# --- the installed configs and man pages
for f in "$D"/etc/qkd-ipsec/*.conf; do
	case ${f##*/} in
	kme-*) d=qkd-sim ;; kmsd-*) d=kmsd ;; n3iwf-*) d=ike-n3iwf ;; ue-*) d=ike-ue ;;
	esac
	out=$("$D/usr/sbin/$d" --check-config "$f" 2>&1)
	check "installed $d --check-config ${f##*/}: exit 0 ($out)" 0 "$?"
done
out=$(sh "$top/mk/man-check.sh" "$D"/usr/share/man/man*/* 2>&1)
check "man pages: no groff, man or lexgrog warning ($out)" 0 "$?"

# --- the systemd units: a PREFIX install, so that they name real binaries
P=$TB/pfx
# shellcheck disable=SC2086
make -s --no-print-directory -C "$top" $SANARG install PREFIX="$P/usr" >/dev/null 2>&1
U=$P/usr/lib/systemd/system
out=$(systemd-analyze verify --man=no "$U"/*.service 2>&1)
check "systemd-analyze verify: 4 units, no complaint" "0 []" "$? [$out]"
for u in qkd-sim kmsd ike-n3iwf ike-ue; do
	s=$(systemd-analyze security --offline=true --no-pager "$U/$u@.service" 2>&1 |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p')
	echo "# systemd-analyze security $u@.service: $s"
	check "$u@: exposure $s at most 2.5 (systemd-analyze security)" true \
		"$(yes_no awk -v s="$s" 'BEGIN { exit !(s != "" && s <= 2.5) }')"
	for k in NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
		User=qkd-ipsec Type=exec; do
		check "$u@: $k" 1 "$(grep -cx "$k" "$U/$u@.service")"
	done
done
for u in qkd-sim kmsd; do
	check "$u@: no capability at all" "CapabilityBoundingSet=" \
		"$(grep '^CapabilityBoundingSet' "$U/$u@.service")"
	check "$u@: StateDirectory qkd-ipsec" 1 "$(grep -cx StateDirectory=qkd-ipsec "$U/$u@.service")"
done
for u in ike-n3iwf ike-ue; do
	check "$u@: only CAP_NET_ADMIN (TUN) and CAP_NET_BIND_SERVICE (port 500)" \
		"CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE" \
		"$(grep '^CapabilityBoundingSet' "$U/$u@.service")"
done
# SIGHUP reloads only in kmsd (grep SIGHUP: kmsd/main.c); the others do not reload.
check "ExecReload only in kmsd@ (the one daemon that reloads on SIGHUP)" "kmsd@.service" \
	"$(grep -l '^ExecReload=/bin/kill -HUP \$MAINPID' "$U"/*.service | xargs -n1 basename | tr '\n' ' ' | sed 's/ $//')"

# --- uninstall: nothing left but empty directories
# shellcheck disable=SC2086
make -s --no-print-directory -C "$top" $SANARG uninstall DESTDIR="$D" PREFIX=/usr >/dev/null 2>&1
check "make uninstall: no file left" "" "$(find "$D" ! -type d | head -n 5 | tr '\n' ' ')"
