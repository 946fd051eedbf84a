#!/bin/sh
# Installs the Debian packages the build, the tests, the demo and the
# benchmarks need, when missing: the one list (tests/interop/charon.sh
# installs its strongSwan part too, for use on its own). Beside the
# libraries: charon and its plugins (openssl, in
# libstrongswan-standard-plugins, gives the test charon its hashers and DH),
# tshark/dumpcap/text2pcap (wireshark-common), ip/ss (iproute2), unshare/
# setsid (util-linux), mount, ping, jq, curl, sqlite3, gnuplot (bench),
# python3 with python3-cryptography (the independent IKE peer and the flood
# tools of the tests), socat (testbed.sh --tunnel: kmsd into the namespaces),
# iperf3 and linux-perf (bench/dataplane, TRACE=1), libpq-dev and postgresql-15
# (kmsd's PostgreSQL pool backend and its tests), iptables (its u32 match drops
# chosen IKE messages in test_ike_lifetime), clang-format and cppcheck
# (make format, make lint); for install and packages (test_install, make
# pkg-test): systemd (systemd-analyze verify/security), groff-base and man-db
# (groff, man, lexgrog: make man-check), dpkg-dev, debhelper and lintian.
# As root it runs apt-get; otherwise it prints the exact line to run.
set -eu
PKGS="build-essential pkg-config libmicrohttpd-dev libgnutls28-dev \
libcurl4-openssl-dev libssl-dev libjansson-dev libsqlite3-dev libinih-dev \
libcmocka-dev openssl curl jq sqlite3 ca-certificates procps iproute2 \
clang libclang-rt-14-dev gnuplot-nox \
strongswan-charon strongswan-swanctl libcharon-extra-plugins \
libstrongswan-standard-plugins coreutils util-linux mount diffutils mawk \
iputils-ping tshark wireshark-common python3 python3-cryptography \
socat iperf3 linux-perf libpq-dev postgresql-15 iptables \
clang-format cppcheck \
systemd groff-base man-db dpkg-dev debhelper lintian"
# `mk/deps.sh docker`: instead, the container engine of docker/testbed.sh
# (`make docker-test`): podman, podman-compose, netavark + aardvark-dns (the
# networks and their DNS; netavark runs iptables, which podman only
# suggests), runc (docker/containers.conf says why), and iproute2 (ss: the
# free host ports testbed.sh publishes Prometheus and kmsd-a-hw on).
[ "${1:-}" != docker ] || PKGS="podman podman-compose netavark aardvark-dns runc iptables iproute2"
# `mk/deps.sh systemd`: systemd-nspawn (systemd-container), which boots the
# root of mk/systemd-test.sh (`make systemd-test`) with systemd as its PID 1.
[ "${1:-}" != systemd ] || PKGS="systemd-container"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
		|| missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages; run as root:" >&2
	echo "  apt-get update && apt-get install -y$missing" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
