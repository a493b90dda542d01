#!/usr/bin/env bash
# record-real.sh: record captures of real Linux TCP/IP stacks talking
# between two network namespaces this script creates, for natcheck's
# regression corpus (captures/real/). No NAT runs here: the captures are
# the inside view, client 10.1.0.2 and server 198.51.100.10, and natcheck
# replay puts its model NAT between them.
#
#   sudo scripts/record-real.sh [OUTDIR [NAME...]]   (default captures/real, all four)
#
# Needs root, iproute2, ethtool, tcpdump, curl and python3. It records
# four captures, each on the client's interface, with nanosecond
# timestamps, whole packets and valid checksums (checksum offload off), so
# that a live NAT can replay them (natcheck record; scripts/record-device.sh):
#   real-http-curl.pcap         curl fetching a small file three times (python3 -m http.server)
#   real-dns-udp.pcap           DNS-like UDP exchanges: 5 queries from 5 source ports, one socket to two server ports
#   real-aborted-transfer.pcap  curl aborting a rate-limited download after 1 s (the client's stack resets it)
#   real-idle-keepalive.pcap    one HTTP/1.1 keep-alive connection, idle IDLE seconds (default 250, past the
#                               4-minute idle timeout) between two requests
# and writes one provenance line per capture to OUTDIR/PROVENANCE.txt
# (replacing the line of a capture recorded again). NAMEs (e.g.
# real-dns-udp) record only those.
set -euo pipefail
out=${1:-captures/real}
shift || true
only=" $* "
idle=${IDLE:-250}
mkdir -p "$out"
out=$(cd "$out" && pwd)
for tool in ip ethtool tcpdump curl python3; do
	command -v "$tool" >/dev/null || { echo "record-real.sh: $tool is missing (apt-get install iproute2 ethtool tcpdump curl python3)" >&2; exit 2; }
done
py=$(command -v python3)

c=ncrec-client s=ncrec-server
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	ip netns del "$c" 2>/dev/null || true
	ip netns del "$s" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$c"
ip netns add "$s"
ip link add ncrec-c type veth peer name ncrec-s
ip link set ncrec-c netns "$c"
ip link set ncrec-s netns "$s"
# IPv4 only: no IPv6 router solicitations in the captures.
ip netns exec "$c" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip netns exec "$s" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$c" link set lo up
ip -n "$s" link set lo up
ip -n "$c" addr add 10.1.0.2/24 dev ncrec-c
ip -n "$s" addr add 198.51.100.10/24 dev ncrec-s
ip -n "$c" link set ncrec-c up
ip -n "$s" link set ncrec-s up
ip -n "$c" route add 198.51.100.0/24 dev ncrec-c
ip -n "$s" route add 10.1.0.0/24 dev ncrec-s
# A small receive buffer on the client keeps the aborted download short.
ip netns exec "$c" sysctl -qw net.ipv4.tcp_rmem="4096 16384 65536"
# No offload: the capture holds the packets as they are on the wire, with
# their checksums computed (with tx checksum offload on, a veth leaves
# them to a NIC there is none of, and a real NAT's connection tracking
# drops such packets as invalid).
ip netns exec "$c" ethtool -K ncrec-c tx off rx off tso off gso off gro off >/dev/null
ip netns exec "$s" ethtool -K ncrec-s tx off rx off tso off gso off gro off >/dev/null

touch "$out/PROVENANCE.txt"

# The server: an HTTP server (HTTP/1.1, keep-alive) and a DNS-like UDP
# responder on ports 53 and 5353 that answers each query with it and 16
# bytes of answer.
mkdir -p "$work/www"
printf 'natcheck real-traffic fixture\n' >"$work/www/small.txt"
head -c 2000000 /dev/zero >"$work/www/large.bin"
ip netns exec "$s" "$py" -m http.server 80 --bind 198.51.100.10 --protocol HTTP/1.1 --directory "$work/www" \
	>"$work/http.log" 2>&1 &
pids+=($!)
cat >"$work/udp.py" <<'EOF'
import selectors, socket
sel = selectors.DefaultSelector()
for port in (53, 5353):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("198.51.100.10", port))
    sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        data, peer = key.fileobj.recvfrom(2048)
        key.fileobj.sendto(data + b"\x00" * 16, peer)
EOF
ip netns exec "$s" "$py" "$work/udp.py" &
pids+=($!)
for _ in $(seq 50); do
	ip netns exec "$c" curl -s -o /dev/null http://198.51.100.10/small.txt && break
	sleep 0.1
done

# record NAME COMMAND...: capture the client's interface while COMMAND runs.
record() {
	local name=$1
	shift
	[ "$only" = "  " ] || [[ "$only" == *" $name "* ]] || return 0
	sed -i "/^$name.pcap: /d" "$out/PROVENANCE.txt"
	local f="$out/$name.pcap"
	: >"$work/tcpdump.log"
	ip netns exec "$c" tcpdump -i ncrec-c -n -U -s 0 -Z root --time-stamp-precision=nano -w "$f" 2>"$work/tcpdump.log" &
	local tp=$!
	for _ in $(seq 50); do grep -q "listening on" "$work/tcpdump.log" && break; sleep 0.1; done
	sleep 1
	ip netns exec "$c" "$@"
	sleep 1
	kill -INT "$tp"
	wait "$tp" || true
	echo "$name.pcap: recorded $(date -u +%Y-%m-%dT%H:%M:%SZ) by scripts/record-real.sh between network namespaces on Linux $(uname -r): $(tail -1 "$work/tcpdump.log" | sed 's/ *$//'); client 10.1.0.2, server 198.51.100.10; $(curl --version | head -1 | cut -d' ' -f1-2), $("$py" --version)" >>"$out/PROVENANCE.txt"
	echo "recorded $f" >&2
}

record real-http-curl sh -c 'for i in 1 2 3; do curl -s -o /dev/null http://198.51.100.10/small.txt; done'

cat >"$work/dns.py" <<'EOF'
import socket
socks = []
for i in range(5):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(b"query-%d example.test A" % i, ("198.51.100.10", 53))
    s.recvfrom(2048)
    socks.append(s)
s = socks[0]  # one socket, two ports of one server (B7: one mapping)
s.sendto(b"query-5 example.test AAAA", ("198.51.100.10", 5353))
s.recvfrom(2048)
s.sendto(b"query-6 example.test A", ("198.51.100.10", 53))
s.recvfrom(2048)
EOF
record real-dns-udp "$py" "$work/dns.py"

record real-aborted-transfer sh -c 'curl -s -o /dev/null --limit-rate 40k --max-time 1 http://198.51.100.10/large.bin; true'

cat >"$work/keepalive.py" <<EOF
import socket, time
s = socket.create_connection(("198.51.100.10", 80))
req = b"GET /small.txt HTTP/1.1\r\nHost: 198.51.100.10\r\n\r\n"
def get():
    s.sendall(req)
    data = b""
    while b"natcheck real-traffic fixture" not in data:
        data += s.recv(4096)
get()
time.sleep($idle)
get()
s.close()
EOF
record real-idle-keepalive "$py" "$work/keepalive.py"
