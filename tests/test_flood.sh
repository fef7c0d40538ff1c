#!/usr/bin/env bash
# What one client without credentials can make exhookd hold: a HEADERS frame
# followed by endless CONTINUATION frames (gRPC 1.51 keeps every header
# field; 40 MB of them made exhookd hold over 600 MB, for good) stays within
# memory_quota, and the server answers calls afterwards. What thousands of
# idle connections left behind is given back once they close.
# Usage: test_flood.sh <exhookd binary> <exhook-bench binary> <source dir>
set -u
BIN=$1
BENCH=$2
SRC=$3
WORK=$(mktemp -d)
trap 'stop_servers; rm -rf "$WORK"' EXIT
. "$(dirname "$0")/testlib.sh"

QUOTA_MB=16
FLOOD_MB=40
# Growth of the server's RSS over its own size before the flood. Bounded:
# the quota plus gRPC's and malloc's overhead (about 20 MB measured). Not:
# 15 times the bytes sent.
BOUND_MB=128

# ASan keeps freed memory in a quarantine (256 MB by default) that would
# count as held; a small one keeps the bound meaningful under sanitizers.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"

rss_kb() { ps -o rss= -p "$1" | tr -d ' '; }

start_exhookd flood "$SRC/scripts" example error "[server]
memory_quota = ${QUOTA_MB}MB"
check "exhookd starts with memory_quota = ${QUOTA_MB}MB" $? "$(cat "$WORK/flood.log")"

before=$(rss_kb "$SERVER_PID")
timeout 60 python3 "$SRC/tests/h2flood.py" continuation 127.0.0.1 "$PORT" "$FLOOD_MB" 40 \
    >"$WORK/sent" &
flood=$!
peak=$before
while kill -0 "$flood" 2>/dev/null; do
    rss=$(rss_kb "$SERVER_PID")
    [ "${rss:-0}" -gt "$peak" ] && peak=$rss
    sleep 0.1
done
wait "$flood"
read -r sent why <"$WORK/sent"
# A server that closes the connection has refused the rest; one that reads
# too slowly to take 40 MB in 40 s has not shown anything either way.
[ "$why" = done ] || [ "$why" = closed ]
check "the flood sent ${FLOOD_MB} MB of CONTINUATION frames, or the server closed the connection" \
    $? "sent=$sent stopped: $why"

[ $((peak - before)) -lt $((BOUND_MB * 1024)) ]
check "the server grew by less than ${BOUND_MB} MB" $? "before=${before} kB peak=${peak} kB"

run_cmd "$BENCH" -t "127.0.0.1:$PORT" -n 20 -w 0 -q -c 1 -m 1
[ $RC -eq 0 ] && grep -q " errors=0 " <<<"$OUT"
check "calls are answered after the flood" $? "rc=$RC out=$OUT err=$ERR"

echo "continuation flood: rss before=${before} kB peak=${peak} kB"

# The idle connections need a descriptor each on both ends.
IDLE=3000
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null
# Memory malloc keeps after the connections close: 22 MB over the size
# before with the trim, 81 MB without (1 round of 3,000 connections).
RETURNED_MB=40
if ldd "$BIN" | grep -q libasan; then
    echo "skip idle connections: ASan's allocator keeps freed memory, there is nothing to trim"
elif [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt $((2 * IDLE + 200)) ]; then
    echo "skip idle connections: the open files limit ($(ulimit -Hn)) is below $((2 * IDLE + 200))"
else
    before=$(rss_kb "$SERVER_PID")
    run_cmd python3 "$SRC/tests/h2flood.py" idle 127.0.0.1 "$PORT" "$IDLE" 1 1
    [ $RC -eq 0 ] && [ "${OUT%% *}" -eq "$IDLE" ]
    check "$IDLE idle connections were opened" $? "rc=$RC out=$OUT err=$ERR"
    # The trim looks every 2 s: 10 s is plenty.
    for _ in $(seq 1 20); do
        after=$(rss_kb "$SERVER_PID")
        [ $((after - before)) -lt $((RETURNED_MB * 1024)) ] && break
        sleep 0.5
    done
    [ $((after - before)) -lt $((RETURNED_MB * 1024)) ]
    check "the memory of closed connections is given back (to less than ${RETURNED_MB} MB over)" $? \
        "before=${before} kB after=${after} kB"
    echo "idle connections: rss before=${before} kB after=${after} kB"
fi

run_cmd "$BENCH" -t "127.0.0.1:$PORT" -n 20 -w 0 -q -c 1 -m 1
[ $RC -eq 0 ] && grep -q " errors=0 " <<<"$OUT"
check "calls are answered after the floods" $? "rc=$RC out=$OUT err=$ERR"

stop_servers
finish
