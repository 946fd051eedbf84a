#!/bin/sh
# tests/testbed.sh up DIR --tunnel: the NWu topology (UE, N3IWF, DN network
# namespaces, tests/netns.sh) with the two-site testbed, checked from the
# outside: two testbeds at once get their own namespaces; DN_ADDR answers
# ping from the N3IWF namespace and takes TCP (bytes and SHA-256 compared
# at both ends); kmsd A is reachable from the N3IWF namespace only and kmsd
# B from the UE namespace only; the IKE handshake between the namespaces
# completes in every mode with its keys counted at the key servers (kmsd
# /metrics); a second connection's IKE packets are captured on NWU_IFACE in
# NWU_NETNS; and `down` leaves no namespace, veth or process behind.
. "$(dirname "$0")/lib.sh"
TB2=$(mktemp -d /tmp/qkd-testbed.XXXXXX)
trap 'sh "$top/tests/testbed.sh" down "$TB2" >/dev/null 2>&1; rm -rf "$TB2"; tb_cleanup' EXIT INT TERM
TB_SH=$top/tests/testbed.sh

for b in ip socat dumpcap tshark curl "$top/${BUILD:-build}/tools/tcpsink"; do
	command -v "$b" >/dev/null 2>&1 || { nok "missing prerequisite: $b (mk/deps.sh, make)"; exit 1; }
done

metric() { curl -s --max-time 10 "$1/metrics" | awk -v m="$2" '$1 == m { print $2; f = 1 } END { if (!f) print "?" }'; }
served() { metric "$1" "kmsd_keys_served_total{endpoint=\"$2\"}"; }
# keys OPS_A OPS_B: "A enc/dec B enc/dec", keys served to SAEs.
keys() { echo "A $(served "$1" enc_keys)/$(served "$1" dec_keys) B $(served "$2" enc_keys)/$(served "$2" dec_keys)"; }
alive() { [ -r "/proc/$1/stat" ] && [ "$(sed "s/^.*) //" "/proc/$1/stat" | cut -c1)" != Z ]; }
# pids_of DIR: "NAME:PID" of every process the testbed recorded in DIR.
pids_of() { for f in "$1"/*.pid; do [ -f "$f" ] && echo "$(basename "$f" .pid):$(cat "$f")"; done; }
# gone DIR NAME...: checks that nothing of DIR's run is left.
gone() {
	d=$1; shift
	left=""
	for ns in "$@"; do ip netns list | grep -q "^$ns\b" && left="$left ns:$ns"; done
	id=${1##*-}
	ip -o link show | grep -q "$id" && left="$left veth:*$id"
	for p in $PIDS; do alive "${p#*:}" && left="$left $p"; done
	check "$(basename "$d"): down leaves no namespace, veth or process" "" "$left"
}

# --- two testbeds at once: qkd (TB) and psk (TB2) ---
sh "$TB_SH" up "$TB" --tunnel >"$TB/up.log" 2>&1 &
p1=$!
sh "$TB_SH" up "$TB2" --tunnel --mode psk >"$TB2/up.log" 2>&1
rc2=$?
wait $p1
check "up --tunnel (qkd) while another one comes up" 0 "$?"
check "up --tunnel --mode psk at the same time" 0 "$rc2"
[ -s "$TB/testbed.env" ] && [ -s "$TB2/testbed.env" ] || { nok "no testbed.env: $(tail -n 3 "$TB/up.log" "$TB2/up.log")"; exit 1; }
. "$TB2/testbed.env"
ns2="$UE_NETNS $N3IWF_NETNS $DN_NETNS"
. "$TB/testbed.env"
ns1="$UE_NETNS $N3IWF_NETNS $DN_NETNS"
check "testbed.env: IKE_MODE, NWU_IFACE, NWU_NETNS, UE_INNER_ADDR" \
	"qkd nwu0 $N3IWF_NETNS 10.60.0.2" "$IKE_MODE $NWU_IFACE $NWU_NETNS $UE_INNER_ADDR"
check "psk testbed: IKE_MODE" psk "$(sed -n 's/^IKE_MODE=//p' "$TB2/testbed.env")"
check "three namespaces each, six distinct names" 6 \
	"$(printf '%s\n' $ns1 $ns2 | sort -u | grep -c .)"
n=0; for ns in $ns1 $ns2; do ip netns list | grep -q "^$ns\b" && n=$((n + 1)); done
check "all six namespaces exist" 6 "$n"
check "no NWu or N6 address in the root namespace" "" \
	"$(ip -o -4 addr show | grep -E " ($UE_NWU_ADDR|$N3IWF_NWU_ADDR|$N3IWF_N6_ADDR|$DN_ADDR)/")"
check "$NWU_IFACE is in $NWU_NETNS with $N3IWF_NWU_ADDR" "$N3IWF_NWU_ADDR/24" \
	"$(ip -n "$NWU_NETNS" -o -4 addr show dev "$NWU_IFACE" | awk '{print $4}')"
check "forwarding on in the N3IWF namespace" 1 \
	"$(ip netns exec "$N3IWF_NETNS" cat /proc/sys/net/ipv4/ip_forward)"
check "the DN routes the UE inner prefix via the N3IWF" "$UE_INNER_PREFIX via $N3IWF_N6_ADDR" \
	"$(ip -n "$DN_NETNS" -4 route show "$UE_INNER_PREFIX" | awk '{print $1, $2, $3}')"

# --- reachability ---
r=$(ip netns exec "$N3IWF_NETNS" ping -c 3 -i 0.2 -W 2 "$DN_ADDR" 2>&1 | sed -n 's/.* \([0-9]*\) received.*/\1/p')
check "DN_ADDR answers ping from the N3IWF namespace" 3 "$r"
r=$(ip netns exec "$UE_NETNS" ping -c 1 -W 2 "$N3IWF_NWU_ADDR" 2>&1 | sed -n 's/.* \([0-9]*\) received.*/\1/p')
check "the N3IWF answers ping on NWu from the UE namespace" 1 "$r"
exp=$(ip netns exec "$N3IWF_NETNS" "$TCPSINK" -c "$DN_ADDR:$DN_TCP_PORT" -b 3000000)
i=0; while [ ! -s "$DN_SINK_OUT" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
check_match "TCP client: 3 MB sent" '^bytes=3000000 sha256=[0-9a-f]{64}$' "$exp"
check "the DN's sink got the same bytes and SHA-256" "$exp" "$(cat "$DN_SINK_OUT")"
# kmsd through the relays: each site's namespace reaches its own kmsd only.
hz() { ip netns exec "$1" curl -s --max-time 5 -o /dev/null -w '%{http_code}' \
	--cacert "$CA" --cert "$2" --key "$3" "$4/api/v1/keys/$5/status"; }
check "kmsd A from the N3IWF namespace (KMSD_A_URL)" 200 \
	"$(hz "$N3IWF_NETNS" "$SAE_A_CERT" "$SAE_A_KEY" "$KMSD_A_URL" sae-b)"
check "kmsd B from the UE namespace (KMSD_B_URL)" 200 \
	"$(hz "$UE_NETNS" "$SAE_B_CERT" "$SAE_B_KEY" "$KMSD_B_URL" sae-a)"
check "kmsd A not reachable from the UE namespace" 000 \
	"$(hz "$UE_NETNS" "$SAE_A_CERT" "$SAE_A_KEY" "$KMSD_A_URL" sae-b)"

# --- the handshakes of up (start_tunnel), counted at the key servers ---
check "qkd: ike-ue established in up" 1 "$(grep -c 'IKE SA established (qkd, nwu)' "$TB/ike-ue.log")"
check "qkd: 13 keys served by kmsd A (enc_keys), 13 by kmsd B (dec_keys)" \
	"A 13/0 B 0/13" "$(keys "$KMSD_A_OPS" "$KMSD_B_OPS")"
check "psk: ike-ue established in up" 1 "$(grep -c 'IKE SA established (psk, nwu)' "$TB2/ike-ue.log")"
. "$TB2/testbed.env"
check "psk: no key served at either kmsd" "A 0/0 B 0/0" "$(keys "$KMSD_A_OPS" "$KMSD_B_OPS")"
PIDS=$(pids_of "$TB2")
sh "$TB_SH" down "$TB2"
gone "$TB2" $ns2
. "$TB/testbed.env"
check "the qkd testbed still has its namespaces" 3 \
	"$(for ns in $ns1; do ip netns list | grep "^$ns\b"; done | grep -c .)"

# --- a second qkd connection, captured on NWU_IFACE in NWU_NETNS ---
# (no tunnel of its own: --nas-tcp yes, as the testbed's N3IWF makes the
# user-plane Child SA only on a PDU session request over NAS/TCP)
rm -f "$TB/nwu.pcap" "$TB/dumpcap.err"
ip netns exec "$NWU_NETNS" dumpcap -q -P -i "$NWU_IFACE" -a duration:20 \
	-w "$TB/nwu.pcap" 2>"$TB/dumpcap.err" &
dc=$!
i=0
while ! grep -q '^Capturing on' "$TB/dumpcap.err" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
ip netns exec "$UE_NETNS" timeout 60 "$BINDIR/ike-ue" --mode qkd --profile nwu \
	--peer "$N3IWF_NWU_ADDR:500" --local "$UE_NWU_ADDR" --force-natt yes --count 1 \
	--nas-tcp yes --ca "$CA" --peer-sae sae-a --kmsd-url "$KMSD_B_URL" --kmsd-cert "$SAE_B_CERT" \
	--kmsd-key "$SAE_B_KEY" --kmsd-ca "$CA" 2>"$TB/ue2.log"
check "a second ike-ue connection from the UE namespace" 0 "$?"
sleep 0.3
kill -INT "$dc" 2>/dev/null; wait "$dc"
f=$(tshark -r "$TB/nwu.pcap" -Y isakmp -T fields -e ip.src -e ip.dst -e udp.dstport -e isakmp.exchangetype 2>/dev/null | sort -u)
check_match "IKE_SA_INIT UE -> N3IWF on port 500 captured on $NWU_IFACE" \
	"$UE_NWU_ADDR	$N3IWF_NWU_ADDR	500	34" "$f"
check_match "IKE_AUTH on port 4500 (NAT-T) captured on $NWU_IFACE" \
	"$UE_NWU_ADDR	$N3IWF_NWU_ADDR	4500	35" "$f"
check "nothing but IKE (UDP 500/4500) and ARP on $NWU_IFACE" "" \
	"$(tshark -r "$TB/nwu.pcap" -Y 'not arp and not (udp.port == 500 or udp.port == 4500)' 2>/dev/null)"
check "qkd: 26 keys served at kmsd A after two connections" "A 26/0 B 0/26" \
	"$(keys "$KMSD_A_OPS" "$KMSD_B_OPS")"
check "ike-n3iwf still running" true "$(yes_no kill -0 "$(cat "$TB/ike-n3iwf.pid")")"

PIDS=$(pids_of "$TB")
sh "$TB_SH" down "$TB"
gone "$TB" $ns1
sh "$TB_SH" down "$TB"
check "down twice is fine" 0 "$?"
check "no sanitizer or crash report" "" "$(crash_reports "$TB"/*.log)"
exit 0
