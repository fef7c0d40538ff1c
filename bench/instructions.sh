#!/usr/bin/env bash
# instructions.sh: the instructions exhookd spends per call, counted with
# valgrind's callgrind (noise-free, unlike calls/s on a shared machine).
# Runs exhookd (etc/exhook.ini, 1 worker, scripts/example.lua, log level
# warn) under callgrind twice, serves N1 calls of RPC in the first run and
# N2 in the second (exhook-bench, 8 connections x 16 in flight, no
# warm-up), and prints (instructions of run 2 - run 1) / (N2 - N1): what one
# more call costs, start-up and shutdown cancelled out. Counts the whole
# server process (the master's child, where gRPC, decoding, Lua and encoding
# run); the master itself does no per-call work.
#   usage: bench/instructions.sh [RPC...]     (default: authenticate publish)
#   env: N1=15000 N2=30000 PORT=9430 (BUILD=build)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
N1=${N1:-15000}
N2=${N2:-30000}
PORT=${PORT:-9430}
[ "$#" -gt 0 ] || set -- authenticate publish

say() { echo "instructions: $*" >&2; }
die() { say "$*"; exit 1; }

"$ROOT/tools/install-deps.sh" >&2 valgrind
make -C "$ROOT" build BUILD="$BUILD" >&2

TMP=$(mktemp -d /tmp/exhook-instructions.XXXXXX)
SERVER_PID=""
cleanup() {
    [ -z "$SERVER_PID" ] || { kill -TERM "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; } || true
    rm -rf "$TMP"
}
trap cleanup EXIT

sed -e "s|^listen = .*|listen = 127.0.0.1:$PORT|" -e "s|^workers = .*|workers = 1|" \
    -e "s|^path = .*|path = $ROOT/scripts|" -e "s|^level = .*|level = warn|" \
    "$ROOT/etc/exhook.ini" >"$TMP/exhook.ini"

# Instructions of the exhookd process that served $2 calls of $1.
count() {  # rpc calls
    local out=$TMP/cg.$1.$2 i files
    rm -f "$out".*
    valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$out.%p" \
        "$BUILD/exhookd" -c "$TMP/exhook.ini" 2>>"$TMP/valgrind.log" &
    SERVER_PID=$!
    for i in $(seq 600); do
        "$BUILD/exhook-bench" -t "127.0.0.1:$PORT" -r authenticate -c 1 -m 1 -n 1 -w 0 -q \
            >/dev/null 2>&1 && break
        [ "$i" -lt 600 ] || die "exhookd under valgrind does not answer after 60 s"
        sleep 0.1
    done
    "$BUILD/exhook-bench" -t "127.0.0.1:$PORT" -r "$1" -c 8 -m 16 -n "$2" -w 0 -q >&2
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=""
    # One file per process; the server child's is the one with the most.
    files=("$out".*)
    [ -e "${files[0]}" ] || die "callgrind wrote no output (see $TMP/valgrind.log)"
    awk '/^(summary|totals):/ { print $2 }' "${files[@]}" | sort -n | tail -n 1
}

echo "| rpc | instructions per call | run 1: calls, instructions | run 2: calls, instructions |"
echo "|---|---|---|---|"
for rpc in "$@"; do
    a=$(count "$rpc" "$N1")
    b=$(count "$rpc" "$N2")
    echo "| $rpc | $(( (b - a) / (N2 - N1) )) | $N1, $a | $N2, $b |"
done
echo
echo "exhookd $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), 1 worker, scripts/example.lua;" \
     "one readiness call + N calls per run (exhook-bench -c 8 -m 16 -w 0)"
