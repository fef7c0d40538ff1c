#!/usr/bin/env bash
# Calls suspended in a wait (exhook.sleep) on one worker: hundreds finish on
# the scripts they started on across a reload, after which the old state
# closes; a memory bomb meanwhile fails alone; past max_waiting_calls a call
# is refused at once; SIGTERM with calls suspended ends within
# shutdown_timeout plus a small bound.
# Usage: test_suspend.sh <exhookd binary> <exhook-bench binary>
set -u
BIN=$1
BENCH=$2
WORK=$(mktemp -d)
trap 'stop_servers; rm -rf "$WORK"' EXIT
. "$(dirname "$0")/testlib.sh"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

mkdir -p "$WORK/s"
# VERSION 1 lets everyone in after a nap; 2 refuses everyone at once.
module() {
    cat >"$WORK/s/m.lua" <<LUA
VERSION = $1
function on_client_authenticate(ci)
    if ci.username == "bomb" then
        local t = {}
        while true do t[#t + 1] = string.rep("x", 1 << 20) .. #t end
    end
    if VERSION == 1 then exhook.sleep($2) end
    return VERSION == 1
end
function deinit()
    local f = io.open("$WORK/deinit.log", "a"); f:write(VERSION, "\n"); f:close()
end
LUA
}

module 1 2
start_exhookd a "$WORK/s" m info "[lua]
memory_limit = 64MB
[server]
shutdown_timeout = 1s" || { echo "FAIL exhookd did not start"; exit 1; }
B=(-t "127.0.0.1:$PORT" -w 0 -q --check none)

# 500 calls in flight on the one worker, each sleeping 2 s; a reload while
# they wait. They finish on VERSION 1 (allow); the old state closes after.
timeout 60 "$BENCH" "${B[@]}" -c 10 -m 50 -n 500 --expect authenticate=allow \
    >"$WORK/bench.out" 2>&1 &
BPID=$!
sleep 0.5
module 2 0
kill -HUP "$SERVER_PID"
wait_log "$WORK/a.log" "reloaded scripts (generation 1)"
check "the reload is done while 500 calls wait" $? "$(tail -3 "$WORK/a.log")"
[ ! -s "$WORK/deinit.log" ]
check "the old state stays open while its calls wait" $? "$(cat "$WORK/deinit.log" 2>&1)"
wait "$BPID"
RC=$?
check "500 suspended calls finish on the scripts they started on" $RC "$(cat "$WORK/bench.out")"
for _ in $(seq 1 100); do grep -qx 1 "$WORK/deinit.log" 2>/dev/null && break; sleep 0.05; done
grep -qx 1 "$WORK/deinit.log"
check "the old state closes (deinit) once its last call ended" $? "$(cat "$WORK/deinit.log" 2>&1)"
run_cmd "$BENCH" "${B[@]}" -c 1 -m 1 -n 5 --expect authenticate=deny
check "new calls run the new scripts" $RC "$OUT $ERR"

# A memory bomb while 100 calls wait: it fails alone.
module 1 2
kill -HUP "$SERVER_PID"
wait_log "$WORK/a.log" "reloaded scripts (generation 2)"
timeout 60 "$BENCH" "${B[@]}" -c 4 -m 25 -n 100 --expect authenticate=allow \
    >"$WORK/bench.out" 2>&1 &
BPID=$!
sleep 0.5
run_cmd "$BENCH" "${B[@]}" -c 1 -m 1 -n 1 --username bomb --expect-status RESOURCE_EXHAUSTED
check "a memory bomb while others wait gets RESOURCE_EXHAUSTED" $RC "$OUT $ERR"
wait "$BPID"
check "the 100 waiting calls are answered OK meanwhile" $? "$(cat "$WORK/bench.out")"

# max_waiting_calls = 20: the 21st call in progress is refused at once.
stop_servers
PIDS=()
start_exhookd b "$WORK/s" m info "[server]
max_waiting_calls = 20
shutdown_timeout = 1s" || { echo "FAIL exhookd did not start"; exit 1; }
B=(-t "127.0.0.1:$PORT" -w 0 -q --check none)
timeout 60 "$BENCH" "${B[@]}" -c 1 -m 20 -n 20 --expect authenticate=allow \
    >"$WORK/bench.out" 2>&1 &
BPID=$!
sleep 0.5
run_cmd "$BENCH" "${B[@]}" -c 1 -m 1 -n 1 --expect-status RESOURCE_EXHAUSTED
check "past max_waiting_calls a call is refused with RESOURCE_EXHAUSTED" $RC "$OUT $ERR"
grep -q "every worker has 20 calls in progress (max_waiting_calls)" "$WORK/b.log"
check "the log says why" $? "$(tail -3 "$WORK/b.log")"
wait "$BPID"
check "the 20 calls in progress are answered" $? "$(cat "$WORK/bench.out")"

# SIGTERM with 200 calls suspended for 2 s and shutdown_timeout = 1 s: the
# process ends within shutdown_timeout plus a small bound.
module 1 30
kill -HUP "$SERVER_PID"
wait_log "$WORK/b.log" "reloaded scripts (generation 1)"
stop_servers
PIDS=()
start_exhookd c "$WORK/s" m info "[server]
shutdown_timeout = 1s" || { echo "FAIL exhookd did not start"; exit 1; }
B=(-t "127.0.0.1:$PORT" -w 0 -q --check none)
timeout 60 "$BENCH" "${B[@]}" -c 4 -m 50 -n 200 >"$WORK/bench.out" 2>&1 &
BPID=$!
sleep 1
start=$(now_ms)
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
took=$(($(now_ms) - start))
[ "$took" -lt 4000 ]
check "SIGTERM with 200 suspended calls ends in ${took} ms (shutdown_timeout 1 s)" $? "$took ms"
grep -q "calls still running after 1000 ms: cancelling them" "$WORK/c.log"
check "the calls still waiting are cancelled" $? "$(tail -5 "$WORK/c.log")"
wait "$BPID"
finish
