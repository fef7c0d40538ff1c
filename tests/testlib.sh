# Shared by the shell tests: sourced, not run. Needs WORK (a scratch folder)
# and BIN (the exhookd binary) set first.
#   check NAME STATUS DETAILS  counts a check as passed when STATUS is 0
#   finish                     prints "N passed, N failed"; non-zero on a failure
#   run_cmd CMD ARGS...        runs CMD (at most 60 s); sets RC, OUT, ERR
#   free_port                  sets PORT to a port nothing listens on
#   start_exhookd NAME SCRIPTS MODULE LEVEL [INI]
#                              exhookd with WORKERS workers (default 1) on a
#                              free port, INI appended to its config; waits (at
#                              most 5 s) until it listens; sets PORT, SERVER_PID
#   wait_log FILE PATTERN [S]  waits (at most S s, default 5) for a line in FILE
#   field KEY                  the value of KEY=value on exhook-bench's result
#                              line in OUT, or nothing
#   stop_servers               ends every exhookd start_exhookd started
failed=0
passed=0
PIDS=()

check() {
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1)); echo "ok   $1"
    else
        failed=$((failed + 1)); echo "FAIL $1: $3"
    fi
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

run_cmd() {
    timeout 60 "$@" >"$WORK/out" 2>"$WORK/err"
    RC=$?
    OUT=$(cat "$WORK/out")
    ERR=$(cat "$WORK/err")
}

listening() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Below Linux's ephemeral range (32768-60999), so that no outgoing
# connection holds the port meanwhile.
free_port() {
    for _ in $(seq 1 50); do
        PORT=$(( 20000 + RANDOM % 12000 ))
        listening "$PORT" || return 0
    done
    return 1
}

start_exhookd() {
    for _ in 1 2 3 4 5; do
        free_port || return 1
        printf '[server]\nlisten = 127.0.0.1:%s\nworkers = %s\n[lua]\npath = %s\ninit_module = %s\n[log]\nlevel = %s\n%s\n' \
            "$PORT" "${WORKERS:-1}" "$2" "$3" "$4" "${5:-}" >"$WORK/$1.ini"
        "$BIN" -c "$WORK/$1.ini" 2>"$WORK/$1.log" &
        SERVER_PID=$!
        PIDS+=("$SERVER_PID")
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break # e.g. the port was taken meanwhile
            listening "$PORT" && return 0
            sleep 0.05
        done
        kill "$SERVER_PID" 2>/dev/null
    done
    return 1
}

wait_log() {
    for _ in $(seq 1 $((${3:-5} * 20))); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

field() {
    grep '^exhook-bench: rpc=' <<<"$OUT" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

stop_servers() {
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
}
