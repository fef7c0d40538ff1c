#!/usr/bin/env bash
# The WebHook in the exhookd binary, with the tests' own receiver
# (httpd.py /hook): SIGUSR1 logs its counters with the other stats; SIGTERM
# delivers what is queued before exhookd exits; with the receiver down,
# SIGTERM gives up at shutdown_timeout and logs what was left.
# Usage: test_webhook.sh <exhookd binary> <exhook-bench binary> <source dir>
set -u
BIN=$1
BENCH=$2
SRC=$3
WORK=$(mktemp -d)
RX_PID=
trap 'stop_servers; [ -n "$RX_PID" ] && kill "$RX_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
. "$(dirname "$0")/testlib.sh"

start_receiver() {
    rm -f "$WORK/rx.port"
    python3 "$SRC/tests/httpd.py" "$WORK/rx.port" &
    RX_PID=$!
    for _ in $(seq 1 100); do [ -s "$WORK/rx.port" ] && break; sleep 0.05; done
    RX_PORT=$(cat "$WORK/rx.port")
}

# The receiver's paths, with python3 (curl is not among the dependencies).
rx() {
    python3 -c 'import sys, urllib.request
data = sys.argv[2].encode() if len(sys.argv) > 2 else None
print(urllib.request.urlopen(sys.argv[1], data, timeout=10).read().decode(), end="")' \
        "http://127.0.0.1:$RX_PORT$1" "${@:2}"
}

recorded() {
    rx /recorded | wc -l
}

mkdir -p "$WORK/s"
printf 'return {}\n' >"$WORK/s/m.lua"
start_receiver
rx /control '{"status": 200, "delay_ms": 200}' >/dev/null
webhook_ini() {
    printf '[server]\nshutdown_timeout = %s\n[webhook]\nurl = http://127.0.0.1:%s/hook\npool_size = 1\nretry_interval = 50ms\nmax_retries = 1000\nrule.message.publish.1 = {"action": "on_message_publish"}\n' "$1" "$2"
}

start_exhookd a "$WORK/s" m info "$(webhook_ini 20s "$RX_PORT")" ||
    { echo "FAIL exhookd did not start: $(cat "$WORK/a.log")"; exit 1; }
B=(-t "127.0.0.1:$PORT" -r publish -w 0 -q --check none -c 1 -m 1)
run_cmd "$BENCH" "${B[@]}" -n 20
check "20 message.publish calls answered while the receiver takes 200 ms a POST" $RC "$OUT $ERR"
# 20 POSTs one at a time: about 4 s. Meanwhile SIGUSR1 shows the queue.
kill -USR1 "$SERVER_PID"
wait_log "$WORK/a.log" "stats: exhookd_webhook_queue_events [1-9]"
check "SIGUSR1 logs the webhook's queue" $? "$(grep stats: "$WORK/a.log" | tail -20)"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
check "exhookd exits 0 after SIGTERM" $? ""
[ "$(recorded)" -eq 20 ]
check "SIGTERM delivers every queued event first" $? "$(recorded) recorded; $(tail -5 "$WORK/a.log")"
grep -q "not delivered" "$WORK/a.log"
check "nothing is reported left" $((! $?)) "$(grep webhook "$WORK/a.log")"
grep -q "stats: exhookd_webhook_sent_total 20$" "$WORK/a.log"
check "the stats at the stop count 20 sent" $? "$(grep stats: "$WORK/a.log" | tail -20)"

# The receiver down: SIGTERM waits shutdown_timeout (1 s), then gives up.
kill "$RX_PID"
wait "$RX_PID" 2>/dev/null
RX_PID=
start_exhookd b "$WORK/s" m info "$(webhook_ini 1s "$RX_PORT")" ||
    { echo "FAIL exhookd did not start: $(cat "$WORK/b.log")"; exit 1; }
B=(-t "127.0.0.1:$PORT" -r publish -w 0 -q --check none -c 1 -m 1)
run_cmd "$BENCH" "${B[@]}" -n 5
check "5 calls answered with the receiver down" $RC "$OUT $ERR"
kill -USR1 "$SERVER_PID"
wait_log "$WORK/b.log" "stats: exhookd_webhook_retried_total [1-9]"
check "SIGUSR1 counts the retries" $? "$(grep stats: "$WORK/b.log" | tail -20)"
START=$(date +%s%N)
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
ELAPSED_MS=$((($(date +%s%N) - START) / 1000000))
[ "$ELAPSED_MS" -ge 900 ] && [ "$ELAPSED_MS" -lt 6000 ]
check "SIGTERM gives up after shutdown_timeout (took $ELAPSED_MS ms)" $? ""
grep -q "webhook: stopping with 5 events" "$WORK/b.log"
check "the count left undelivered is logged" $? "$(grep webhook "$WORK/b.log")"
grep -q 'stats: exhookd_webhook_dropped_total{reason="shutdown"} 5$' "$WORK/b.log"
check "and counted as dropped at shutdown" $? "$(grep stats: "$WORK/b.log" | tail -20)"
finish
