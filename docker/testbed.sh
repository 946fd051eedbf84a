#!/bin/sh
# The container testbed (docker/compose.yaml) with podman or docker:
#
#   docker/testbed.sh build       base image (if absent) and the two images
#   docker/testbed.sh up          build if absent, then start the testbed in
#                                 order and wait for the QKD-keyed tunnel
#   docker/testbed.sh down        stop and remove containers, volumes and
#                                 networks (also the hardware profile's)
#   docker/testbed.sh test        `make docker-test`: up, the checks below,
#                                 down (also on failure); prints the time
#   docker/testbed.sh compose ARGS...
#                                 the compose tool with this file, project
#                                 qkd and the settings below (e.g. ps, logs)
#
# Engine: docker compose when a Docker daemon and its compose plugin answer,
# else podman-compose; when neither is there, mk/deps.sh docker installs
# Debian's podman, podman-compose, netavark, aardvark-dns and runc (root).
# With podman, CONTAINERS_CONF is docker/containers.conf (runc + cgroupfs,
# netavark) and the networks are made here with their subnets first
# (podman-compose 1.0.3 ignores ipam). No registry is needed: the Debian 12
# base is mk/froot.sh's debootstrap tarball (mk/fresh-test.sh's), imported as
# localhost/debian:bookworm and :bookworm-slim (QKD_BASE, QKD_RUNTIME_BASE).
#
# test checks: the pki one-shot exits 0; the healthchecks of both KMEs,
# both kmsd and both IKE endpoints pass; ike-ue logs "tunnel up"; kmsd A
# served 13 enc_keys and kmsd B 13 dec_keys (qkd mode, paper schedule) at
# their /metrics, and Prometheus scraped the same numbers; 5 pings from the
# UE to the DN come back through the TUN, and both ends' status files count
# them on the user-plane Child SA; the hardware profile's kmsd-a-hw, given
# certificates from the test PKI and KME A as its "external" KME, fills its
# pool. Any failure stops the test with its reason and exit status 1.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
COMPOSE_FILE=$top/docker/compose.yaml
SERVICES="pki kme-a kme-b kmsd-a kmsd-b prometheus ike-n3iwf dn ike-ue"
HW_SERVICES="kmsd-a-hw"
NETS="qkd-site-a:172.30.1 qkd-site-b:172.30.2 qkd-link:172.30.3 qkd-nwu:172.30.4 qkd-n6:172.30.5"
export QKD_BASE=${QKD_BASE:-localhost/debian:bookworm}
export QKD_RUNTIME_BASE=${QKD_RUNTIME_BASE:-localhost/debian:bookworm-slim}
IMAGES="localhost/qkd-ipsec:latest localhost/qkd-ipsec-prometheus:latest"

say() { echo "docker-test: [$(date -u +%T)] $*" >&2; }
die() { say "FAILED: $*"; exit 1; }

# --- engine ---
engine() {
	if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 &&
	    docker compose version >/dev/null 2>&1; then
		ENGINE=docker; COMPOSE="docker compose"
		return 0
	fi
	# podman, podman-compose and what docker/containers.conf names
	sh "$top/mk/deps.sh" docker || die "mk/deps.sh docker failed"
	ENGINE=podman; COMPOSE=podman-compose
	export CONTAINERS_CONF=${CONTAINERS_CONF:-$top/docker/containers.conf}
}

compose() {
	# shellcheck disable=SC2086 # COMPOSE: a command and its subcommand
	$COMPOSE -f "$COMPOSE_FILE" -p qkd "$@"
}

# --- images ---
base_image() {
	$ENGINE image inspect "$QKD_BASE" >/dev/null 2>&1 &&
	    $ENGINE image inspect "$QKD_RUNTIME_BASE" >/dev/null 2>&1 && return 0
	# mk/froot.sh: the debootstrap minbase of mk/fresh-test.sh, built once
	. "$top/mk/froot.sh"
	froot_base
	tar=$FRESH_BASE
	say "importing $tar as $QKD_BASE and $QKD_RUNTIME_BASE"
	$ENGINE import "$tar" "$QKD_BASE" >/dev/null || die "$ENGINE import failed"
	$ENGINE tag "$QKD_BASE" "$QKD_RUNTIME_BASE" || die "$ENGINE tag failed"
}

built() {
	for i in $IMAGES; do
		$ENGINE image inspect "$i" >/dev/null 2>&1 || { echo "$i"; return 1; }
	done
}

build() {
	base_image
	say "building $IMAGES"
	# podman-compose goes on after a failed image; `built` tells. Debian
	# 12's podman 4.3 kills a build step now and then on a loaded machine
	# ("processing tar file(): signal: killed", no OOM: buildah#4790,
	# podman#17918, fixed after 4.3): one more try, from the layer cache.
	if ! compose build pki prometheus || ! built >/dev/null; then
		say "image build failed; once more (podman 4.3's random \"signal: killed\")"
		compose build pki prometheus || die "image build failed"
	fi
	i=$(built) || die "image $i was not built"
}

# --- networks (podman-compose 1.0.3 makes them without their subnets) ---
networks() {
	[ "$ENGINE" = podman ] || return 0
	for n in $NETS; do
		podman network exists "${n%%:*}" && continue
		podman network create --subnet "${n#*:}.0/24" \
		    --label io.podman.compose.project=qkd \
		    --label com.docker.compose.project=qkd "${n%%:*}" >/dev/null ||
		    die "podman network create ${n%%:*} failed"
	done
}

# --- waiting ---
healthy() {
	if [ "$ENGINE" = podman ]; then
		podman healthcheck run "$1" >/dev/null 2>&1
	else
		[ "$(docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null)" = healthy ]
	fi
}

running() { [ "$($ENGINE inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }

# wait_for SECONDS WHAT CONTAINER CMD...: until CMD succeeds; fails with
# CONTAINER's last log lines.
wait_for() {
	n=$(($1 * 2)); what=$2; c=$3; shift 3
	i=0
	until "$@"; do
		i=$((i + 1))
		if [ $i -ge $n ] || ! running "$c"; then
			$ENGINE logs "$c" 2>&1 | tail -n 15 >&2
			die "$what ($c: $(running "$c" && echo running || echo not running))"
		fi
		sleep 0.5
	done
}

start() {
	for c in "$@"; do
		$ENGINE start "$c" >/dev/null || die "$ENGINE start $c failed"
	done
}

# ex CONTAINER CMD...: run CMD in CONTAINER, stdout only.
ex() { c=$1; shift; $ENGINE exec "$c" "$@"; }

# metric CONTAINER NAME: the value of the sample NAME at its :9464/metrics.
metric() {
	ex "$1" curl -fsS --max-time 5 http://127.0.0.1:9464/metrics |
	    awk -v m="$2" '$1 == m { print $2; f = 1 } END { if (!f) print "?" }'
}

pool_keys() {
	ex "$1" curl -fsS --max-time 5 http://127.0.0.1:9464/healthz |
	    grep -q '"status":"ok"' &&
	    ! ex "$1" curl -fsS --max-time 5 http://127.0.0.1:9464/healthz | grep -q '"keys":0'
}

tunnel_up() { $ENGINE logs qkd-ike-ue 2>&1 | grep -q "tunnel up: inner 10.60.0.2"; }

up() {
	for i in $IMAGES; do
		$ENGINE image inspect "$i" >/dev/null 2>&1 || { build; break; }
	done
	networks
	# shellcheck disable=SC2086
	compose up --no-start $SERVICES >/dev/null || die "compose up --no-start failed"
	start qkd-pki
	rc=$($ENGINE wait qkd-pki) || die "$ENGINE wait qkd-pki failed"
	[ "$rc" = 0 ] || { $ENGINE logs qkd-pki >&2; die "the pki service exited $rc"; }
	say "ok: test PKI in the pki volume"
	start qkd-kme-a
	wait_for 60 "KME A not healthy" qkd-kme-a healthy qkd-kme-a
	start qkd-kme-b
	wait_for 60 "KME B not healthy" qkd-kme-b healthy qkd-kme-b
	start qkd-kmsd-a qkd-kmsd-b qkd-prometheus
	wait_for 60 "kmsd A not healthy" qkd-kmsd-a healthy qkd-kmsd-a
	wait_for 60 "kmsd B not healthy" qkd-kmsd-b healthy qkd-kmsd-b
	wait_for 60 "kmsd A's pool did not fill" qkd-kmsd-a pool_keys qkd-kmsd-a
	say "ok: KMEs paired over qkd-link, both kmsd healthy, kmsd A's pool filled"
	start qkd-ike-n3iwf
	wait_for 60 "ike-n3iwf not healthy" qkd-ike-n3iwf healthy qkd-ike-n3iwf
	start qkd-dn qkd-ike-ue
	wait_for 60 "no \"tunnel up\" from ike-ue" qkd-ike-ue tunnel_up
	wait_for 30 "ike-ue not healthy" qkd-ike-ue healthy qkd-ike-ue
	say "ok: ike-ue and ike-n3iwf up, tunnel up ($($ENGINE logs qkd-ike-ue 2>&1 |
	    grep -m1 'tunnel up' | sed 's/.*tunnel up/tunnel up/'))"
}

down() {
	# rm -v: the anonymous volumes too (the image's VOLUME where compose
	# mounts none; podman-compose's down leaves them)
	for c in $SERVICES $HW_SERVICES; do
		$ENGINE rm -f -v "qkd-$c" >/dev/null 2>&1 || :
	done
	# shellcheck disable=SC2086
	compose down -v $SERVICES $HW_SERVICES >/dev/null 2>&1 || :
	compose down -v >/dev/null 2>&1 || :
	for v in $($ENGINE volume ls -q 2>/dev/null | grep '^qkd_' || :); do
		$ENGINE volume rm -f "$v" >/dev/null 2>&1 || :
	done
	for n in $NETS; do
		$ENGINE network rm "${n%%:*}" >/dev/null 2>&1 || :
	done
}

# --- the checks of `test` ---
# user_pkts CONTAINER FILE FIELD: FIELD of the user-plane Child SA line.
user_pkts() {
	ex "$1" cat "$2" | awk -v f="$3" '$1 == "child" && / kind=user / {
	    for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) print kv[2] } }' |
	    head -n 1
}

check_keys() {
	a=$(metric qkd-kmsd-a 'kmsd_keys_served_total{endpoint="enc_keys"}')
	b=$(metric qkd-kmsd-b 'kmsd_keys_served_total{endpoint="dec_keys"}')
	[ "$a" = 13 ] && [ "$b" = 13 ] ||
	    die "keys at kmsd: A enc_keys $a, B dec_keys $b (want 13 and 13, qkd paper schedule)"
	say "ok: keys counted at kmsd /metrics: A enc_keys 13, B dec_keys 13"
}

check_ping() {
	dn=$(ex qkd-dn ip -4 -o addr show | awk '{ sub("/.*", "", $4) }
	    index($4, "172.30.5.") == 1 { print $4 }')
	[ -n "$dn" ] || die "the dn container has no address on n6"
	dev=$(ex qkd-ike-ue ip -4 route get "$dn" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
	[ "$dev" = qkd0 ] || die "the UE routes $dn via \"$dev\", not the tunnel (qkd0)"
	u_out0=$(user_pkts qkd-ike-ue /run/qkd/ue.status out_packets)
	n_in0=$(user_pkts qkd-ike-n3iwf /run/qkd/n3iwf.status in_packets)
	[ -n "$u_out0" ] && [ -n "$n_in0" ] || die "no user-plane Child SA in the status files"
	ex qkd-ike-ue ping -n -c 5 -i 0.2 -W 2 "$dn" >"$tmp/ping.out" 2>&1 ||
	    { cat "$tmp/ping.out" >&2; die "ping $dn from the UE through the tunnel"; }
	grep -q ' 0% packet loss' "$tmp/ping.out" || { cat "$tmp/ping.out" >&2; die "ping lost packets"; }
	sleep 2.5	# the status files are rewritten every second
	u_out=$(user_pkts qkd-ike-ue /run/qkd/ue.status out_packets)
	u_in=$(user_pkts qkd-ike-ue /run/qkd/ue.status in_packets)
	n_in=$(user_pkts qkd-ike-n3iwf /run/qkd/n3iwf.status in_packets)
	[ $((u_out - u_out0)) -ge 5 ] && [ $((n_in - n_in0)) -ge 5 ] && [ "$u_in" -ge 5 ] ||
	    die "ESP counters: UE out +$((u_out - u_out0)) in $u_in, N3IWF in +$((n_in - n_in0)) (want >= 5 each)"
	say "ok: 5/5 pings UE -> DN $dn via qkd0; ESP user-plane SA: UE out +$((u_out - u_out0)), N3IWF in +$((n_in - n_in0))"
}

# prom QUERY: the first value Prometheus answers (from kmsd A's container,
# which shares site-a with it).
prom() {
	ex qkd-kmsd-a curl -fsS --max-time 5 -G http://prometheus:9090/api/v1/query \
	    --data-urlencode "query=$1" 2>/dev/null |
	    sed -n 's/.*"value":\[[^,]*,"\([^"]*\)"\].*/\1/p'
}

prom_ok() {
	[ "$(prom 'kmsd_keys_served_total{endpoint="enc_keys",site="a"}')" = 13 ] &&
	    [ "$(prom 'kmsd_keys_served_total{endpoint="dec_keys",site="b"}')" = 13 ] &&
	    [ "$(prom 'sum(up{job="kmsd"})')" = 2 ]
}

check_prometheus() {
	wait_for 60 "Prometheus does not show both kmsd up with 13 keys each" \
	    qkd-prometheus prom_ok
	say "ok: Prometheus scraped both kmsd: up 2, enc_keys{site=a} 13, dec_keys{site=b} 13"
}

check_hardware() {
	hw=$tmp/hw-a
	mkdir -p "$hw"
	for f in kmsd.crt:kmsd-a.crt kmsd.key:kmsd-a.key sae-ca.crt:ca.crt \
	    kme-ca.crt:ca.crt sae-a.crt:kmsd-a.sae-a.crt sae-a.key:kmsd-a.sae-a.key; do
		ex qkd-kmsd-a cat "/pki/${f#*:}" >"$hw/${f%%:*}" || die "copying ${f#*:} from the PKI"
	done
	cp "$top/docker/hardware/kmsd-a.conf" "$hw/kmsd.conf"
	chown -R 990:990 "$hw" && chmod 700 "$hw" && chmod 600 "$hw"/*.key
	port=$(free_port)
	HW_CERTS_A=$hw KMSD_A_HW_PORT=$port compose up --no-start kmsd-a-hw >/dev/null ||
	    die "compose up --no-start kmsd-a-hw failed"
	start qkd-kmsd-a-hw
	wait_for 60 "kmsd-a-hw not healthy" qkd-kmsd-a-hw healthy qkd-kmsd-a-hw
	wait_for 60 "kmsd-a-hw's pool did not fill from KME A" qkd-kmsd-a-hw pool_keys qkd-kmsd-a-hw
	up=$(metric qkd-kmsd-a-hw kmsd_upstream_up)
	[ "$up" = 1 ] || die "kmsd-a-hw: kmsd_upstream_up $up"
	say "ok: profile hardware: kmsd-a-hw with mounted certificates filled its pool from https://kme-a:8443"
}

# free_port: a TCP port nothing listens on in the root namespace.
free_port() {
	p=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 20000))
	while :; do
		l=$(ss -Hltn "sport = :$p") || die "ss -Hltn failed (iproute2: mk/deps.sh docker)"
		[ -z "$l" ] && break
		p=$((p + 1))
	done
	echo "$p"
}

test_all() {
	t0=$(date +%s)
	tmp=$(mktemp -d /tmp/qkd-docker-test.XXXXXX)
	trap 'rc=$?; say "tearing down"; down; rm -rf "$tmp";
	    [ $rc -eq 0 ] || say "FAILED after $(($(date +%s) - t0)) s"; exit $rc' EXIT
	trap 'exit 130' INT TERM
	say "engine: $ENGINE ($COMPOSE)"
	down
	build
	t1=$(date +%s)
	say "ok: images built in $((t1 - t0)) s"
	PROMETHEUS_PORT=$(free_port)
	export PROMETHEUS_PORT
	up
	check_keys
	check_ping
	check_prometheus
	check_hardware
	t2=$(date +%s)
	trap - EXIT
	down
	rm -rf "$tmp"
	say "PASSED in $(($(date +%s) - t0)) s (build $((t1 - t0)) s, testbed and checks $((t2 - t1)) s, teardown $(($(date +%s) - t2)) s)"
}

cmd=${1:-}
[ $# -eq 0 ] || shift
case $cmd in
build)	engine; build ;;
up)	engine; tmp=""; PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}; export PROMETHEUS_PORT; up ;;
down)	engine; down ;;
test)	engine; test_all ;;
compose) engine; compose "$@" ;;
*)	sed -n '2,/^set -eu/{/^#/s/^# \{0,1\}//p}' "$0"; [ "$cmd" = -h ] || [ "$cmd" = --help ] ;;
esac
