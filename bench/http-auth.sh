#!/usr/bin/env bash
# http-auth.sh: authenticate calls whose handler makes one exhook.http.get,
# against an upstream on loopback: tests/httpd.py answering after DELAY_MS
# (a threaded Python server: its own speed bounds the figure) and nginx
# answering at once (what exhookd itself costs per request). Prints
# exhook-bench's result line for each.   Run from the source tree, built.
#   env: DURATION=5 WORKERS=2 DELAY_MS=2 (BUILD=build)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
DURATION=${DURATION:-5}
WORKERS=${WORKERS:-2}
DELAY_MS=${DELAY_MS:-2}
TMP=$(mktemp -d /tmp/exhook-http-auth.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"' EXIT

free_port() {  # a port nothing answers on, below the ephemeral range
    local p
    while :; do
        p=$(( 20000 + RANDOM % 12000 ))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "http-auth: nothing listens on $1" >&2
    exit 1
}

python3 "$ROOT/tests/httpd.py" "$TMP/httpd.port" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$TMP/httpd.port" ] && break; sleep 0.05; done

NGINX_PORT=$(free_port)
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $TMP/nginx/pid;
error_log $TMP/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx; proxy_temp_path $TMP/nginx;
    fastcgi_temp_path $TMP/nginx; uwsgi_temp_path $TMP/nginx; scgi_temp_path $TMP/nginx;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$NGINX_PORT; location / { return 200 "ok"; } }
}
CONF
nginx -c "$TMP/nginx.conf" -p "$TMP/nginx" &
PIDS+=($!)
wait_port "$NGINX_PORT"

run() {  # run NAME URL
    mkdir -p "$TMP/$1"
    cat >"$TMP/$1/m.lua" <<LUA
local url = '$2'
function on_client_authenticate(ci)
  local r, err = exhook.http.get(url)
  return r ~= nil and r.status == 200
end
LUA
    local port
    port=$(free_port)
    printf '[server]\nlisten = 127.0.0.1:%s\nworkers = %s\n[lua]\npath = %s\ninit_module = m\n[log]\nlevel = warn\n' \
        "$port" "$WORKERS" "$TMP/$1" >"$TMP/$1.ini"
    "$BUILD/exhookd" -c "$TMP/$1.ini" 2>"$TMP/$1.log" &
    local pid=$!
    wait_port "$port"
    echo "$1 ($2):"
    "$BUILD/exhook-bench" -t "127.0.0.1:$port" -r authenticate --check none \
        --expect authenticate=allow -c 8 -m 16 -d "$DURATION" -q
    kill "$pid"
    wait "$pid" || true
}

run httpd "http://127.0.0.1:$(cat "$TMP/httpd.port")/delay/$DELAY_MS"
run nginx "http://127.0.0.1:$NGINX_PORT/"
