#!/usr/bin/env bash
# The load generator as a smoke test: against exhookd running the shipped
# example scripts every scenario of every interface generation gets only
# right answers, open loop and --split-frames work, and wrong answers, an unknown package, a
# missing server and a bad option each make it fail with the right exit code.
# For other scripts: the replies counted by status and verdict, --expect,
# request values from patterns and files reaching the script, --deadline.
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

# ---- counting replies: --check none, --expect, request values ----

# counts <expected...>: the result line's status and verdict counts are
# exactly these key=value pairs, in its order (the zero ones are left out)
counts() {
    [ "$(grep '^exhook-bench: rpc=' <<<"$OUT" | tr ' ' '\n' |
        grep -E '^(status_[A-Za-z_]+|empty|ignore|continue_(true|false)|stop_(true|false)|modified|dropped|unchanged|malformed)=' |
        tr '\n' ' ')" = "$* " ]
}

# With one client thread and no warm-up, call k of a scenario of S steps is
# step k % S for client identity k / S, and identity i gets value i % N of a
# list of N: 900 authenticate calls give each of 3 usernames 300 calls.
printf 'gooduser\nbaduser\n\nother\n' >"$WORK/users"
run -t "127.0.0.1:$GOOD" -i v2 -c 2 -m 4 -n 900 -w 0 -q --check none --username "@$WORK/users"
[ $RC -eq 0 ] && [ "$(field errors)" = 0 ] &&
    counts status_OK=900 continue_true=300 stop_true=300 stop_false=300
check "--check none, v2, usernames from a file: exact counts per verdict, exit 0" $? "rc=$RC out=$OUT err=$ERR"

run -t "127.0.0.1:$GOOD" -r publish -c 2 -m 4 -n 300 -w 0 -q --check none
[ $RC -eq 0 ] && counts status_OK=300 modified=100 dropped=100 unchanged=100
check "--check none, publish: modified, dropped and unchanged counted" $? "rc=$RC out=$OUT err=$ERR"

run -t "127.0.0.1:$GOOD" -i v9 -c 2 -m 4 -n 300 -w 0 -q --check none
[ $RC -eq 1 ] && [ "$(field errors)" = 300 ] && counts status_UNIMPLEMENTED=300 &&
    grep -q "expected status OK, got UNIMPLEMENTED" <<<"$ERR"
check "--check none: non-OK statuses are errors, exit 1" $? "rc=$RC out=$OUT err=$ERR"
run -t "127.0.0.1:$GOOD" -i v9 -c 2 -m 4 -n 300 -w 0 -q --check none --max-errors 300
[ $RC -eq 0 ] && [ "$(field errors)" = 300 ]
check "--max-errors 300 tolerates 300 failed calls, exit 0" $? "rc=$RC out=$OUT err=$ERR"
run -t "127.0.0.1:$GOOD" -i v9 -c 2 -m 4 -n 300 -w 0 -q --check none --max-errors 299
[ $RC -eq 1 ]
check "--max-errors 299 does not tolerate 300, exit 1" $? "rc=$RC out=$OUT err=$ERR"
run -t "127.0.0.1:$GOOD" -i v9 -c 2 -m 4 -n 300 -w 0 -q --expect-status UNIMPLEMENTED
[ $RC -eq 0 ] && [ "$(field errors)" = 0 ] && counts status_UNIMPLEMENTED=300
check "--expect-status UNIMPLEMENTED passes when every call gets it" $? "rc=$RC out=$OUT err=$ERR"

run -t "127.0.0.1:$GOOD" -c 2 -m 4 -n 300 -w 0 -q --expect authenticate=allow
[ $RC -eq 1 ] && [ "$(field errors)" = 100 ] && counts status_OK=300 continue_true=100 stop_true=100 stop_false=100 &&
    grep -q "OnClientAuthenticate \[baduser\]: username baduser: expected continue_true or stop_true, got stop_false" <<<"$ERR"
check "--expect authenticate=allow fails on the example's deny, exit 1" $? "rc=$RC out=$OUT err=$ERR"
run -t "127.0.0.1:$GOOD" -c 2 -m 4 -n 300 -w 0 -q --expect authenticate=deny --username baduser
[ $RC -eq 0 ] && [ "$(field errors)" = 0 ] && counts status_OK=300 stop_false=300
check "--expect authenticate=deny passes when every reply denies" $? "rc=$RC out=$OUT err=$ERR"
run -t "127.0.0.1:$GOOD" -r publish -c 2 -m 4 -n 300 -w 0 -q --expect publish=modified \
    --expect publish=dropped --expect publish=unchanged
[ $RC -eq 0 ] && [ "$(field errors)" = 0 ]
check "--expect given for one hook several times accepts any of them" $? "rc=$RC out=$OUT err=$ERR"

for size in 0 5000; do
    run -t "127.0.0.1:$GOOD" -r publish -c 2 -m 4 -n 300 -w 0 -q --payload-size $size
    [ $RC -eq 0 ] && [ "$(field errors)" = 0 ]
    check "--payload-size $size: the example's rewrite keeps every byte" $? "rc=$RC out=$OUT err=$ERR"
done

# A module of the operator's own, deciding by username, password, clientid
# and topic: the counts show that the values given reach it.
mkdir -p "$WORK/own"
cat >"$WORK/own/own.lua" <<'EOF_LUA'
local M = {}
function M.on_client_authenticate(clientinfo, result, meta)
  if clientinfo.password == "wrong" then return false end
  if clientinfo.clientid:match("^gate%-") then return true, "continue" end
  if clientinfo.username:match("^dev%-%d*[02468]$") then return true end
  return nil
end
function M.on_message_publish(message, meta)
  local n = tonumber(message.topic:match("^sensors/(%d+)/temp$"))
  if not n then return nil end
  if n % 2 == 1 then return message end
  return false
end
return M
EOF_LUA
start_exhookd own "$WORK/own" own error
check "exhookd with an operator's own module starts and listens" $? "$(cat "$WORK/own.log")"
OWN=$PORT
run -t "127.0.0.1:$OWN" -c 2 -m 4 -n 900 -w 0 -q --check none --username 'dev-%d' --ids 1-10
[ $RC -eq 0 ] && counts status_OK=900 ignore=450 stop_true=450
check "usernames from a pattern: dev-2, -4 ... allowed, the odd ones ignored" $? "rc=$RC out=$OUT err=$ERR"
run -t "127.0.0.1:$OWN" -c 2 -m 4 -n 300 -w 0 -q --check none --username 'dev-%d' --password wrong
[ $RC -eq 0 ] && counts status_OK=300 stop_false=300
check "--password reaches the script" $? "rc=$RC out=$OUT err=$ERR"
run -t "127.0.0.1:$OWN" -c 2 -m 4 -n 300 -w 0 -q --check none --username other --clientid 'gate-%d'
[ $RC -eq 0 ] && counts status_OK=300 continue_true=300
check "--clientid reaches the script" $? "rc=$RC out=$OUT err=$ERR"
run -t "127.0.0.1:$OWN" -r publish -c 2 -m 4 -n 300 -w 0 -q --check none --topic 'sensors/%d/temp' --ids 1-4
[ $RC -eq 0 ] && counts status_OK=300 dropped=150 unchanged=150
check "topics from a pattern: the message returned as sent counts unchanged" $? "rc=$RC out=$OUT err=$ERR"
run -t "127.0.0.1:$OWN" -r publish -c 2 -m 4 -n 300 -w 0 -q --topic 'sensors/%d/temp' --ids 1-4 \
    --expect publish=unchanged
[ $RC -eq 1 ] && [ "$(field errors)" = 150 ] &&
    grep -q "topic sensors/2/temp: expected unchanged, got dropped" <<<"$ERR"
check "--expect publish=unchanged fails on the dropped messages, exit 1" $? "rc=$RC out=$OUT err=$ERR"

# --deadline: each call's grpc-timeout. A handler that waits 2 s misses a
# 300 ms deadline and makes a 20 s one.
mkdir -p "$WORK/slow"
printf 'local M = {}\nfunction M.on_client_authenticate()\n  exhook.sleep(2)\n  return true\nend\nreturn M\n' \
    >"$WORK/slow/slow.lua"
start_exhookd slow "$WORK/slow" slow error
check "exhookd with a handler that waits 2 s starts and listens" $? "$(cat "$WORK/slow.log")"
run -t "127.0.0.1:$PORT" -c 1 -m 4 -n 4 -w 0 -q --deadline 300 --expect-status DEADLINE_EXCEEDED
[ $RC -eq 0 ] && counts status_DEADLINE_EXCEEDED=4
check "--deadline 300: 2 s handlers answer DEADLINE_EXCEEDED" $? "rc=$RC out=$OUT err=$ERR"
run -t "127.0.0.1:$PORT" -c 1 -m 4 -n 4 -w 0 -q --deadline 20000 --check none
[ $RC -eq 0 ] && counts status_OK=4 stop_true=4
check "--deadline 20000: 2 s handlers answer in time" $? "rc=$RC out=$OUT err=$ERR"

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

# bad <message> <args...>: the options exit 2 with the message and the usage
bad() {
    local msg=$1
    shift
    run "$@"
    [ $RC -eq 2 ] && grep -qF -- "$msg" <<<"$ERR" && grep -q "^usage: exhook-bench" <<<"$ERR"
    check "bad options exit 2: $*" $? "rc=$RC err=$ERR"
}
bad "invalid check: 'all' (example or none)" --check all
bad "invalid expect: 'login=allow'" --expect login=allow
bad "invalid expect: 'authenticate=maybe' (unknown verdict" --expect authenticate=maybe
bad "invalid expect: 'publish=allow' (a verdict that hook never gives" --expect publish=allow
bad "invalid expect-status: 'FINE'" --expect-status FINE
bad "--expect and --expect-status count the replies: not with --check example" --check example --expect authenticate=deny
bad "--username and --topic need --check none or --expect" --username 'dev-%d'
bad "invalid username pattern: 'u-%s' (one %d for the id" --check none --username 'u-%s'
bad "invalid topic pattern: 'a/%d/%d'" --check none --topic 'a/%d/%d'
bad "cannot read password file '$WORK/nothing': No such file or directory" --password "@$WORK/nothing"
: >"$WORK/empty"
bad "clientid file '$WORK/empty' has no values" --clientid "@$WORK/empty"
bad "invalid ids: '5-1'" --check none --username 'u%d' --ids 5-1
bad "invalid ids: '0-100000' (FIRST-LAST, 0 <= FIRST <= LAST, at most 100000)" --ids 0-100000
bad "invalid payload-size: '-1'" --payload-size -1
bad "invalid deadline: '0' (an integer from 1 to 3600000)" --deadline 0

finish
