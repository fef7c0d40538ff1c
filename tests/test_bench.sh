#!/usr/bin/env bash
# The load generator as a smoke test: against exhookd running the shipped
# example scripts every scenario of every interface generation gets only
# right answers, open loop and --split-frames work, and wrong answers, an unknown package, a
# missing server and a bad option each make it fail with the right exit code.
# Usage: test_bench.sh <exhookd binary> <exhook-bench binary> <source dir>
set -u
BIN=$1
BENCH=$2
SRC=$(cd "$3" && pwd) || exit 1
WORK=$(mktemp -d)
trap 'stop_servers; rm -rf "$WORK"' EXIT
. "$(dirname "$0")/testlib.sh"

# run <args...>: runs the bench; sets RC, OUT, ERR
run() { run_cmd "$BENCH" "$@"; }

# at_least <value> <min>: the value is an integer >= min
at_least() {
    [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ]
}

start_exhookd good "$SRC/scripts" example error
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

# --split-frames sends the headers of a call and then its message in a second
# batch; every call must still get its right answer, in both loops.
run -t "127.0.0.1:$GOOD" -r mix -c 2 -m 4 -n 300 -w 0 --split-frames
[ $RC -eq 0 ] && [ "$(field errors)" = 0 ] && at_least "$(field calls)" 300 &&
    grep -q "headers and message in separate writes" <<<"$OUT"
check "--split-frames, closed loop: 300 calls, every reply right, exit 0" $? "rc=$RC out=$OUT err=$ERR"
run -t "127.0.0.1:$GOOD" -r publish -c 2 -m 4 -R 500 -n 200 -w 0 -q -S
[ $RC -eq 0 ] && [ "$(field errors)" = 0 ] && at_least "$(field calls)" 200
check "-S, open loop at 500 calls/s: 200 calls, every reply right, exit 0" $? "rc=$RC out=$OUT err=$ERR"

# A server that answers, but not as scripts/example.lua would.
mkdir -p "$WORK/wrong"
printf 'local M = {}\nfunction M.on_client_authenticate(clientinfo, result, meta)\n  return true\nend\nreturn M\n' \
    >"$WORK/wrong/wrong.lua"
start_exhookd wrong "$WORK/wrong" wrong error
check "exhookd with a script that lets everyone in starts and listens" $? "$(cat "$WORK/wrong.log")"
run -t "127.0.0.1:$PORT" -r authenticate -c 2 -m 4 -n 300 -w 0 -q
[ $RC -eq 1 ] && at_least "$(field errors)" 1 &&
    grep -q "\[baduser\]: expected STOP_AND_RETURN bool_result=false, got STOP_AND_RETURN bool_result=true" <<<"$ERR"
check "wrong answers are counted as errors, exit 1" $? "rc=$RC out=$OUT err=$ERR"

run -t "127.0.0.1:$GOOD" -i v9 -c 2 -m 4 -n 300 -w 0 -q
[ $RC -eq 1 ] && at_least "$(field errors)" 1 && grep -q "got UNIMPLEMENTED" <<<"$ERR"
check "an unknown package (v9) fails every call, exit 1" $? "rc=$RC out=$OUT err=$ERR"

free_port
NOBODY=$PORT
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
