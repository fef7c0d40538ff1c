#!/usr/bin/env bash
# A worker stuck in code that cannot be interrupted: a looping __gc
# finalizer, a backtracking pattern, a blocking C call (sandbox off, so that
# nothing refuses them first). The call it holds is answered with
# DEADLINE_EXCEEDED instead of hanging, the other calls are answered
# meanwhile, a replacement process serves the same port afterwards, and
# SIGTERM ends the master in time, also while a worker is stuck.
# Usage: test_stuck.sh <exhookd binary> <exhook-bench binary> <source dir>
set -u
BIN=$1
BENCH=$2
SRC=$(cd "$3" && pwd) || exit 1
WORK=$(mktemp -d)
trap 'stop_servers; rm -rf "$WORK"' EXIT
. "$(dirname "$0")/testlib.sh"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# bench <args...>: one connection, one call at a time; sets RC, OUT, ERR
bench() { run_cmd "$BENCH" -t "127.0.0.1:$PORT" -c 1 -m 1 -w 0 -q "$@"; }

mkdir -p "$WORK/s"
cp "$SRC/scripts/example.lua" "$WORK/s/"
# Each module gets stuck in client.connected, after example's handler.
cat >"$WORK/s/gc.lua" <<'LUA'
function on_client_connected(ci)
    setmetatable({}, {__gc = function() while true do end end})
    collectgarbage()
end
LUA
cat >"$WORK/s/pattern.lua" <<'LUA'
function on_client_connected(ci)
    string.find(string.rep("a", 30000), ".-.-.-.-b")
end
LUA
cat >"$WORK/s/cblock.lua" <<'LUA'
function on_client_connected(ci)
    os.execute("exec sleep 20 </dev/null >/dev/null 2>&1")
end
LUA

SETTINGS='[server]
shutdown_timeout = 1s
watchdog = 500ms
[lua]
call_timeout = 200ms
sandbox = false'
WORKERS=2

# start_stuck_call NAME: a client.connected call in the background, once
# example's handler has logged it the worker is in the stuck module
start_stuck_call() {
    STUCK_T0=$(now_ms)
    timeout 60 "$BENCH" -t "127.0.0.1:$PORT" -r connected -c 1 -m 1 -n 1 -w 0 -q \
        >"$WORK/$1.stuck.out" 2>"$WORK/$1.stuck.err" &
    STUCK_PID=$!
    wait_log "$WORK/$1.log" "\[example\] client connected" 20
}

# stop_master NAME: SIGTERM to the master; sets RC and STOP_MS
stop_master() {
    local t0
    t0=$(now_ms)
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID"
    RC=$?
    STOP_MS=$(($(now_ms) - t0))
}

# scrape: GET /metrics on MPORT into $WORK/scrape.txt
scrape() {
    (exec 3<>"/dev/tcp/127.0.0.1/$MPORT" && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 &&
        timeout 10 cat <&3) >"$WORK/scrape.txt" 2>&1
}

for module in gc pattern cblock; do
    # The metrics endpoint too, on a port between free_port's range and
    # the ephemeral ports: the replacement binds it beside the old child.
    for _ in $(seq 1 50); do
        MPORT=$((32000 + RANDOM % 700))
        listening "$MPORT" || break
    done
    start_exhookd "$module" "$WORK/s" "example, $module" info \
        "$SETTINGS"$'\n'"[metrics]"$'\n'"listen = 127.0.0.1:$MPORT"
    check "$module: exhookd starts with 2 workers" $? "$(cat "$WORK/$module.log")"

    start_stuck_call "$module"
    check "$module: the stuck call reaches the module" $? "$(cat "$WORK/$module.log")"

    # Calls that reach the stuck worker's queue are answered UNAVAILABLE by
    # its stand-in; it keeps 4 requests posted per rpc, never re-posted.
    bench -r authenticate -n 20
    [ "$(field calls)" = 20 ] && [ "$(field errors)" -le 4 ]
    check "$module: other calls are answered meanwhile (20 answered, at most 4 errors)" $? \
        "rc=$RC out=$OUT err=$ERR"
    echo "info $module: $(field errors) of 20 calls meanwhile reached the stuck worker's queue"

    wait "$STUCK_PID"
    elapsed=$(($(now_ms) - STUCK_T0))
    grep -q "got DEADLINE_EXCEEDED (4): exhookd worker w[12] is stuck in code that cannot be interrupted (hook client.connected, modules example, $module)$" \
        "$WORK/$module.stuck.err" && [ "$elapsed" -lt 10000 ]
    check "$module: the stuck call is answered with DEADLINE_EXCEEDED naming the worker, hook and modules within 10 s" \
        $? "after ${elapsed} ms: $(cat "$WORK/$module.stuck.err")"
    echo "info $module: stuck call answered after ${elapsed} ms (call_timeout 200ms, watchdog 500ms)"

    grep -q "error \[watchdog\] worker w[12] stuck in code that cannot be interrupted: hook client.connected, modules example, $module, [0-9.]* s past its deadline; the call is answered with DEADLINE_EXCEEDED$" \
        "$WORK/$module.log"
    check "$module: the watchdog logs worker, hook, modules and how long" $? "$(cat "$WORK/$module.log")"

    wait_log "$WORK/$module.log" "info  \[master\] child [0-9]* serves on port $PORT$" 20 &&
        grep -q "warn  \[master\] child [0-9]* has a stuck worker: starting a replacement$" \
            "$WORK/$module.log"
    check "$module: the master starts a replacement that says it is ready" $? \
        "$(cat "$WORK/$module.log")"
    echo "info $module: $(grep -E 'stuck in code|serves on port' "$WORK/$module.log" | cut -c12-23 | tr '\n' ' ')(watchdog report, replacement ready)"

    bench -r authenticate -n 50
    [ $RC -eq 0 ] && [ "$(field calls)" = 50 ] && [ "$(field errors)" = 0 ]
    check "$module: the replacement serves the same port: 50 calls, every reply right" $? \
        "rc=$RC out=$OUT err=$ERR"

    scrape && grep -q '^exhookd_build_info{version="[0-9.]*"} 1' "$WORK/scrape.txt"
    check "$module: /metrics is served after the replacement, on the same port" $? \
        "$(cat "$WORK/scrape.txt" "$WORK/$module.log")"

    stop_master
    [ $RC -eq 0 ] && [ "$STOP_MS" -lt 6000 ]
    check "$module: SIGTERM ends the master within shutdown_timeout + 5 s, exit 0" $? \
        "rc=$RC after ${STOP_MS} ms: $(cat "$WORK/$module.log")"
    echo "info $module: SIGTERM to exit ${STOP_MS} ms"
done

# SIGTERM while a worker is stuck, with the watchdog off: the child gives
# up on the worker after shutdown_timeout + 2 s and says so, exit code 1.
start_exhookd term "$WORK/s" "example, gc" info "${SETTINGS/watchdog = 500ms/watchdog = 0}"
check "watchdog off: exhookd starts" $? "$(cat "$WORK/term.log")"
start_stuck_call term
check "watchdog off: the stuck call reaches the module" $? "$(cat "$WORK/term.log")"
sleep 1
stop_master
[ $RC -eq 1 ] && [ "$STOP_MS" -lt 6000 ] &&
    grep -q "error \[main\] worker w[12] did not stop within shutdown_timeout (or its time limit) + 2000 ms: stuck in code that cannot be interrupted; exiting without it$" \
        "$WORK/term.log"
check "SIGTERM with a stuck worker ends the master within shutdown_timeout + 5 s, exit 1" $? \
    "rc=$RC after ${STOP_MS} ms: $(cat "$WORK/term.log")"
echo "info stuck worker, watchdog off: SIGTERM to exit ${STOP_MS} ms"
wait "$STUCK_PID"

finish
