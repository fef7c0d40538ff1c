#!/usr/bin/env bash
# The load generator as a smoke test: against exhookd running the shipped
# example scripts every scenario of every interface generation gets only
# right answers, open loop works, and wrong answers, an unknown package, a
# missing server and a bad option each make it fail with the right exit code.
# Usage: test_bench.sh <exhookd binary> <exhook-bench binary> <source dir>
set -u
BIN=$1
BENCH=$2
SRC=$(cd "$3" && pwd) || exit 1
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
. "$(dirname "$0")/testlib.sh"

# run <args...>: runs the bench (at most 60 s); sets RC, OUT, ERR
run() {
    timeout 60 "$BENCH" "$@" >"$WORK/out" 2>"$WORK/err"
    RC=$?
    OUT=$(cat "$WORK/out")
    ERR=$(cat "$WORK/err")
}

# field <key>: the value of key=value on the result line in OUT, or nothing
field() {
    grep '^exhook-bench: rpc=' <<<"$OUT" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# at_least <value> <min>: the value is an integer >= min
at_least() {
    [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ]
}

# listening <port>: something accepts connections on 127.0.0.1:<port>
listening() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start_server <name> <scripts dir> <module>: starts exhookd with 1 worker on
# a free random port and waits (at most 5 s) until it listens; sets PORT
start_server() {
    for _ in 1 2 3 4 5; do
        PORT=$(( 20000 + RANDOM % 20000 ))
        listening "$PORT" && continue
        printf '[server]\nlisten = 127.0.0.1:%s\nworkers = 1\n[lua]\npath = %s\ninit_module = %s\n[log]\nlevel = error\n' \
            "$PORT" "$2" "$3" >"$WORK/$1.ini"
        "$BIN" -c "$WORK/$1.ini" 2>"$WORK/$1.log" &
        local pid=$!
        PIDS+=("$pid")
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break # e.g. the port was taken meanwhile
            listening "$PORT" && return 0
            sleep 0.05
        done
        kill "$pid" 2>/dev/null
    done
    return 1
}

start_server good "$SRC/scripts" example
check "exhookd with the example scripts starts and listens" $? "$(cat "$WORK/good.log")"
GOOD=$PORT

for v in v1 v2 v3; do
    for rpc in authenticate authorize publish connected mix; do
        run -t "127.0.0.1:$GOOD" -i "$v" -r "$rpc" -c 2 -m 4 -n 300 -w 0 -q
        [ $RC -eq 0 ] && [ "$(field errors)" = 0 ] && at_least "$(field calls)" 300 &&
            [ "$(field rpc)" = "$rpc" ] && [ "$(field interface)" = "$v" ]
        check "$v $rpc: 300 calls, every reply right, exit 0" $? "rc=$RC out=$OUT err=$ERR"
    done
done

run -t "127.0.0.1:$GOOD" -c 2 -m 4 -R 500 -n 200 -w 0 -q
[ $RC -eq 0 ] && [ "$(field errors)" = 0 ] && at_least "$(field calls)" 200 &&
    [ "$(field offered_per_s)" = 500 ]
check "open loop at 500 calls/s: 200 calls, every reply right, exit 0" $? "rc=$RC out=$OUT err=$ERR"

# A server that answers, but not as scripts/example.lua would.
mkdir -p "$WORK/wrong"
printf 'local M = {}\nfunction M.on_client_authenticate(clientinfo, result, meta)\n  return true\nend\nreturn M\n' \
    >"$WORK/wrong/wrong.lua"
start_server wrong "$WORK/wrong" wrong
check "exhookd with a script that lets everyone in starts and listens" $? "$(cat "$WORK/wrong.log")"
run -t "127.0.0.1:$PORT" -r authenticate -c 2 -m 4 -n 300 -w 0 -q
[ $RC -eq 1 ] && at_least "$(field errors)" 1 &&
    grep -q "\[baduser\]: expected STOP_AND_RETURN bool_result=false, got STOP_AND_RETURN bool_result=true" <<<"$ERR"
check "wrong answers are counted as errors, exit 1" $? "rc=$RC out=$OUT err=$ERR"

run -t "127.0.0.1:$GOOD" -i v9 -c 2 -m 4 -n 300 -w 0 -q
[ $RC -eq 1 ] && at_least "$(field errors)" 1 && grep -q "got UNIMPLEMENTED" <<<"$ERR"
check "an unknown package (v9) fails every call, exit 1" $? "rc=$RC out=$OUT err=$ERR"

for _ in $(seq 1 20); do
    NOBODY=$(( 20000 + RANDOM % 20000 ))
    listening "$NOBODY" || break
done
start=$(date +%s%N)
run -t "127.0.0.1:$NOBODY" -c 2 -n 10 -q
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $RC -eq 1 ] && [ "$ms" -lt 4000 ] && grep -q "cannot connect to 127.0.0.1:$NOBODY" <<<"$ERR"
check "nothing listening: one error and exit 1 at once" $? "rc=$RC after ${ms} ms err=$ERR"

run --frobnicate
[ $RC -eq 2 ] && grep -q "^usage: exhook-bench" <<<"$ERR"
check "an unknown option exits 2" $? "rc=$RC err=$ERR"

run -c 0
[ $RC -eq 2 ] && grep -q "invalid connections: '0'" <<<"$ERR"
check "a bad option value exits 2" $? "rc=$RC err=$ERR"

finish
