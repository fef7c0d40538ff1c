#!/usr/bin/env bash
# webhook.sh: the figures of the built-in WebHook, on this machine, over
# loopback, exhookd with scripts/example.lua and WORKERS workers, the
# webhook forwarding every message.publish (one rule, no topic):
#
#   1. latency: the broker-facing p99 of message.publish at RATE calls/s
#      (build/exhook-bench -R) with the webhook off, and with the webhook
#      posting to a receiver that takes 1 s per POST (nginx + echo_sleep);
#      ROUNDS alternated rounds of DURATION s.
#   2. throughput: message.publish as fast as exhookd answers (closed loop,
#      DURATION s), the webhook posting to nginx answering 200 at once,
#      default [webhook] settings: events forwarded per second, during the
#      load and after it (the backlog drained with the CPU to itself), and
#      CPU time per event, of the webhook's thread and of the whole serving
#      process (against the same load with the webhook off).
#
# Prints markdown tables.   Run from anywhere.
#   env: ROUNDS=3 DURATION=10 RATE=5000 WORKERS=2 PARTS="latency throughput"
#   (BUILD=build)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
RATE=${RATE:-5000}
WORKERS=${WORKERS:-2}
PARTS=${PARTS:-latency throughput}
BIN=$BUILD/exhookd
BENCH=$BUILD/exhook-bench
TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

http_get() {
    python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode(), end="")' "$1"
}

# nginx: /slow answers after 1 s, /fast at once.
NGINX_PORT=$(free_port)
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log stderr warn;
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location = /slow { echo_read_request_body; echo_sleep 1; echo ok; }
        location = /fast { return 200 "ok\n"; }
    }
}
EOF
nginx -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" &
PIDS+=($!)
sleep 0.5

# exhookd NAME [WEBHOOK_PATH]: sets PORT, MPORT, PID (the master's) and
# CHILD (the serving child's).
start_exhookd() {
    PORT=$(free_port)
    MPORT=$(free_port)
    {
        printf '[server]\nlisten = 127.0.0.1:%s\nworkers = %s\n' "$PORT" "$WORKERS"
        printf '[lua]\npath = %s/scripts\ninit_module = example\n' "$ROOT"
        printf '[log]\nlevel = error\n[metrics]\nlisten = 127.0.0.1:%s\n' "$MPORT"
        if [ -n "${2:-}" ]; then
            printf '[webhook]\nurl = http://127.0.0.1:%s%s\n' "$NGINX_PORT" "$2"
            printf 'rule.message.publish.1 = {"action": "on_message_publish"}\n'
        fi
    } >"$TMP/$1.ini"
    "$BIN" -c "$TMP/$1.ini" 2>"$TMP/$1.log" &
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 1 100); do
        CHILD=$(pgrep -P "$PID" || true)
        [ -n "$CHILD" ] && http_get "http://127.0.0.1:$MPORT/metrics" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "exhookd did not start: $(cat "$TMP/$1.log")" >&2
    exit 1
}

stop_exhookd() {
    kill "$PID"
    wait "$PID" || true
}

metric() {
    http_get "http://127.0.0.1:$MPORT/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}

# CPU time in clock ticks: of process $1, or of its thread named $2.
cpu_ticks() {
    local stat=/proc/$1/stat
    if [ -n "${2:-}" ]; then
        for t in /proc/"$1"/task/*; do
            [ "$(cat "$t/comm")" = "$2" ] && stat=$t/stat
        done
    fi
    awk '{ print $14 + $15 }' "$stat"
}

field() {
    tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"
}

HZ=$(getconf CLK_TCK)
LOAD=(-r publish -q --check none -d "$DURATION")

if [[ $PARTS == *latency* ]]; then
echo "## 1. message.publish at $RATE calls/s: broker-facing latency"
echo
echo "| round | webhook | calls/s | p50 µs | p99 µs | p99.9 µs | errors | forwarded | dropped (queue_full) |"
echo "|---|---|---|---|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
    for mode in off slow; do
        if [ "$mode" = off ]; then start_exhookd lat; else start_exhookd lat /slow; fi
        line=$("$BENCH" -t "127.0.0.1:$PORT" "${LOAD[@]}" -R "$RATE")
        sent=$(metric exhookd_webhook_sent_total)
        dropped=$(metric 'exhookd_webhook_dropped_total{reason="queue_full"}')
        echo "| $round | $([ "$mode" = off ] && echo off || echo "receiver 1 s/POST") |" \
             "$(field calls_per_s "$line") | $(field p50_us "$line") | $(field p99_us "$line") |" \
             "$(field p99.9_us "$line") | $(field errors "$line") | ${sent:--} | ${dropped:--} |"
        stop_exhookd
    done
done
echo
fi

[[ $PARTS == *throughput* ]] || exit 0
echo "## 2. Forwarding to a receiver that answers at once (default settings)"
echo
echo "| webhook | calls/s answered | events forwarded/s, load and backlog | backlog drained, events/s | dropped | webhook thread CPU µs/event | process CPU µs/call |"
echo "|---|---|---|---|---|---|---|"
for mode in off fast; do
    if [ "$mode" = off ]; then start_exhookd tput; else start_exhookd tput /fast; fi
    c0=$(cpu_ticks "$CHILD")
    w0=$([ "$mode" = fast ] && cpu_ticks "$CHILD" exhookd-webhook || echo 0)
    t0=$(date +%s%N)
    line=$("$BENCH" -t "127.0.0.1:$PORT" "${LOAD[@]}" -w 0)
    calls=$(field calls "$line")
    drain=-
    if [ "$mode" = fast ]; then
        s0=$(metric exhookd_webhook_sent_total)
        d0=$(date +%s%N)
        # Until the queue is empty: every event accepted is posted.
        for _ in $(seq 1 600); do
            [ "$(metric exhookd_webhook_queue_events)" = 0 ] && break
            sleep 0.1
        done
        drain=$(awk -v n=$(($(metric exhookd_webhook_sent_total) - s0)) -v a="$d0" -v b="$(date +%s%N)" \
                    'BEGIN { printf "%.0f", n / ((b - a) / 1e9) }')
    fi
    t1=$(date +%s%N)
    c1=$(cpu_ticks "$CHILD")
    w1=$([ "$mode" = fast ] && cpu_ticks "$CHILD" exhookd-webhook || echo 0)
    sent=$(metric exhookd_webhook_sent_total)
    dropped=$(metric 'exhookd_webhook_dropped_total{reason="queue_full"}')
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) / 1e9 }')
    echo "| $mode | $(field calls_per_s "$line") |" \
         "$([ "$mode" = fast ] && awk -v s="$sent" -v t="$secs" 'BEGIN { printf "%.0f", s / t }' || echo -) |" \
         "$drain |" \
         "${dropped:-0} |" \
         "$([ "$mode" = fast ] && awk -v w=$((w1 - w0)) -v s="$sent" -v hz="$HZ" 'BEGIN { printf "%.1f", w / hz * 1e6 / s }' || echo -) |" \
         "$(awk -v c=$((c1 - c0)) -v n="$calls" -v hz="$HZ" 'BEGIN { printf "%.1f", c / hz * 1e6 / n }') |"
    stop_exhookd
done
