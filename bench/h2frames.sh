#!/usr/bin/env bash
# h2frames.sh: the HTTP/2 frames and TCP segments per call in a packet capture
# of an ExHook server's port, per direction, by frame type (tshark's http2
# dissector). HEADERS(end) are the trailers, which end the stream; PING(ack)
# answers a PING. Capture with dumpcap or tshark, e.g.
#   dumpcap -i lo -f "tcp port 9000" -w /tmp/x.pcap &
#   build/exhook-bench -t 127.0.0.1:9000 -R 2000 -n 10000 -w 0 -q
#   kill %1; bench/h2frames.sh /tmp/x.pcap 9000 10000
# usage: h2frames.sh PCAP SERVER_PORT CALLS   (CALLS: what the capture holds,
#        so -w 0 and -n on exhook-bench; the connections' set-up counts too)
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 PCAP SERVER_PORT CALLS" >&2; exit 2; }
command -v tshark >/dev/null || { echo "$0: needs tshark (Debian package tshark)" >&2; exit 2; }
pcap=$1 port=$2 calls=$3

# One line per TCP segment: source port, payload length, and the type and
# flags of each HTTP/2 frame in it (comma-separated).
tshark -r "$pcap" -d "tcp.port==$port,http2" -T fields -E separator=' ' \
    -e tcp.srcport -e tcp.len -e http2.type -e http2.flags |
    awk -v port="$port" -v calls="$calls" '
    BEGIN {
        split("DATA HEADERS PRIORITY RST_STREAM SETTINGS PUSH_PROMISE PING GOAWAY WINDOW_UPDATE CONTINUATION", nm, " ")
    }
    {
        dir = $1 == port ? "server->client" : "client->server"
        if ($2 > 0) seg[dir]++
        n = split($3, type, ","); split($4, flag, ",")
        for (i = 1; i <= n; i++) {
            t = type[i] + 0; f = flag[i] + 0
            k = nm[t + 1]
            if (t == 1 && f % 2) k = k "(end)"   # END_STREAM
            if (t == 6 && f % 2) k = k "(ack)"   # ACK
            frames[dir " " k]++; total[dir]++
        }
    }
    END {
        for (d in seg)
            printf "%s: %.3f segments/call, %.3f frames/call\n", d, seg[d] / calls, total[d] / calls
        for (k in frames)
            printf "  %-36s %9d  %.3f/call\n", k, frames[k], frames[k] / calls
    }' | sort
