#!/usr/bin/env bash
# Two exhookd processes, two workers each, sharing one Redis-backed
# dictionary as several instances serving one EMQX cluster do: every call
# counted exactly once across them, and a limit of 2 connections per user
# that holds across them (each user's 3rd and later are refused, whichever
# instance they reach).
# They run scripts/shared_limits.lua, after a module that counts calls.
# Usage: test_shared_redis_instances.sh <exhookd binary> <exhook-bench binary> <source dir>
set -u
BIN=$1
BENCH=$2
SRC=$(cd "$3" && pwd) || exit 1
WORK=$(mktemp -d)
REDIS_PID=
trap 'stop_servers; [ -n "$REDIS_PID" ] && kill "$REDIS_PID" && wait "$REDIS_PID"; rm -rf "$WORK"' EXIT
. "$(dirname "$0")/testlib.sh"

free_port || exit 1
RPORT=$PORT
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
    >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 1 200); do listening "$RPORT" && break; sleep 0.05; done
listening "$RPORT"
check "redis-server listens" $? "$(cat "$WORK/redis.log")"

mkdir "$WORK/scripts"
cp "$SRC/scripts/shared_limits.lua" "$WORK/scripts/"
cat >"$WORK/scripts/count_calls.lua" <<'LUA'
-- Counts every call in the same dictionary, with no opinion on it.
local limits = exhook.shared.limits
local M = {}
function M.on_client_authenticate(clientinfo)
  local n, err = limits:incr("calls", 1, 0)
  if not n then error(err, 0) end
end
return M
LUA
INI=$(printf '[shared]\nlimits = redis://127.0.0.1:%s/0\n' "$RPORT")
WORKERS=2 start_exhookd a "$WORK/scripts" "count_calls, shared_limits" error "$INI"
check "instance a starts" $? "$(cat "$WORK/a.log")"
A=$PORT
WORKERS=2 start_exhookd b "$WORK/scripts" "count_calls, shared_limits" error "$INI"
check "instance b starts" $? "$(cat "$WORK/b.log")"
B=$PORT

# Both at once, 3000 calls each over 100 users, many calls in flight.
CALLS=3000
bench() {
    "$BENCH" -t "127.0.0.1:$1" -c 4 -m 16 -n "$CALLS" -w 0 -q --check none \
        --username 'u%d' --ids 0-99 >"$WORK/$2.out" 2>&1
}
bench "$A" a &
PA=$!
bench "$B" b &
PB=$!
wait "$PA"
RA=$?
wait "$PB"
RB=$?
[ "$RA" -eq 0 ] && [ "$RB" -eq 0 ]
check "both benches get an answer to every call" $? "$(cat "$WORK/a.out" "$WORK/b.out")"

# count OUTFILE NAME: NAME=value on the bench's result line, 0 if absent
count() {
    local v
    v=$(grep '^exhook-bench: rpc=' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p")
    echo "${v:-0}"
}
allowed=$(( $(count "$WORK/a.out" stop_true) + $(count "$WORK/b.out" stop_true) ))
refused=$(( $(count "$WORK/a.out" stop_false) + $(count "$WORK/b.out" stop_false) ))
[ "$allowed" -eq 200 ] && [ "$refused" -eq $((2 * CALLS - 200)) ]
check "2 connections per user across both instances: 200 let in, the rest refused" $? \
    "allowed=$allowed refused=$refused: $(cat "$WORK/a.out" "$WORK/b.out")"

total=$(redis-cli -p "$RPORT" GET exhookd:limits:calls)
[ "$total" = $((2 * CALLS)) ]
check "every call counted once across both instances" $? "total=$total"
u0=$(redis-cli -p "$RPORT" GET exhookd:limits:conn:u0)
[ "$u0" = 2 ]
check "each user holds exactly 2 connections (a refused one gives its slot back)" $? "conn:u0=$u0"

# Redis gone: calls fail with a message naming the dictionary and server.
kill "$REDIS_PID" && wait "$REDIS_PID"
REDIS_PID=
run_cmd "$BENCH" -t "127.0.0.1:$A" -c 1 -m 1 -n 5 -w 0 -q --check none --max-errors 5
want="exhook.shared.limits:incr: redis 127.0.0.1:$RPORT"
grep -qF "$want" "$WORK/a.log" || grep -qF "$want" <<<"$OUT$ERR"
check "Redis down: the failure names the dictionary and the server" $? "out=$OUT err=$ERR log=$(tail -5 "$WORK/a.log")"

finish
