#!/usr/bin/env bash
# Shared dictionaries outlive what replaces the Lua states and the server
# process: a count kept in one goes on across a reload (SIGHUP) and across
# the replacements of the server child by the master (the child killed; a
# worker stuck in a blocking C call), on 2 workers; a [shared] change asks for a restart; exhookd -t
# checks scripts that use exhook.shared.
# Usage: test_shared.sh <exhookd binary> <exhook-bench binary>
set -u
BIN=$1
BENCH=$2
WORK=$(mktemp -d)
trap 'stop_servers; rm -rf "$WORK"' EXIT
. "$(dirname "$0")/testlib.sh"

mkdir -p "$WORK/s"
cat >"$WORK/s/count.lua" <<'LUA'
local d = exhook.shared.d
function on_client_authenticate(ci)
  local n, err = d:incr("logins", 1, 0)
  exhook.log("info", "logins", n, "worker", exhook.worker_id)
  return true
end
-- Stuck where nothing can interrupt it (sandbox off): the watchdog reports
-- it and the master replaces the process.
function on_client_connected(ci)
  os.execute("exec sleep 20 </dev/null >/dev/null 2>&1")
end
LUA

# logins N: N authenticate calls, each answered
logins() {
    run_cmd "$BENCH" -t "127.0.0.1:$PORT" -r authenticate -c 1 -m 1 -n "$1" -w 0 -q --check none
    [ "$RC" -eq 0 ]
}

WORKERS=2
start_exhookd shared "$WORK/s" count info "[server]
watchdog = 500ms
shutdown_timeout = 1s
[lua]
call_timeout = 200ms
sandbox = false
[shared]
d = 1MB"
check "starts with a [shared] dictionary" $? "$(cat "$WORK/shared.log")"

logins 10 && wait_log "$WORK/shared.log" "logins 10 worker"
check "10 calls count to 10" $? "$OUT $ERR"

kill -HUP "$SERVER_PID"
wait_log "$WORK/shared.log" "reloaded scripts" &&
    logins 1 && wait_log "$WORK/shared.log" "logins 11 worker"
check "a reload keeps the count" $? "$(tail -5 "$WORK/shared.log")"

CHILD=$(pgrep -P "$SERVER_PID" | head -1)
kill -KILL "$CHILD"
# The master starts a replacement: wait until it serves.
ok=1
for _ in $(seq 1 100); do
    NEW=$(pgrep -P "$SERVER_PID" | head -1)
    if [ -n "$NEW" ] && [ "$NEW" != "$CHILD" ] && logins 1; then ok=0; break; fi
    sleep 0.1
done
[ "$ok" -eq 0 ] && wait_log "$WORK/shared.log" "logins 12 worker"
check "a replaced server process keeps the count" $? "$(tail -5 "$WORK/shared.log")"

timeout 60 "$BENCH" -t "127.0.0.1:$PORT" -r connected -c 1 -m 1 -n 1 -w 0 -q --check none \
    >/dev/null 2>&1 &
STUCK_PID=$!
# The replacement serves once the master stops the process it replaced.
wait_log "$WORK/shared.log" "has a stuck worker: starting a replacement" 20 &&
    wait_log "$WORK/shared.log" "stopping child [0-9]*, replaced" 20
ok=$?
wait "$STUCK_PID"
[ "$ok" -eq 0 ] && logins 1 && wait_log "$WORK/shared.log" "logins 13 worker"
check "the replacement of a process with a stuck worker keeps the count" $? \
    "$(tail -8 "$WORK/shared.log")"

sed -i 's/^d = 1MB/d = 2MB/' "$WORK/shared.ini"
kill -HUP "$SERVER_PID"
wait_log "$WORK/shared.log" "and \[shared\] take effect after a restart"
check "a [shared] change asks for a restart" $? "$(tail -3 "$WORK/shared.log")"
logins 1 && wait_log "$WORK/shared.log" "logins 14 worker"
check "and the running dictionary goes on" $? "$(tail -3 "$WORK/shared.log")"

run_cmd "$BIN" -t -c "$WORK/shared.ini"
[ "$RC" -eq 0 ]
check "exhookd -t checks scripts that use exhook.shared" $? "$OUT $ERR"

printf '[shared]\nd = 1MB\nd = 2MB\n' >"$WORK/dup.ini"
run_cmd "$BIN" -t -c "$WORK/dup.ini"
[ "$RC" -eq 2 ] && grep -q "dup.ini:3: duplicate key 'd' in section \[shared\]" <<<"$ERR"
check "a duplicate dictionary is a config error with its line" $? "$RC $ERR"

# scripts/shared_users.lua: 64 users read once, by one of 4 workers, into
# the dictionary; every worker authenticates against it.
SRC=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$WORK/u"
cp "$SRC/scripts/shared_users.lua" "$WORK/u/"
{
    echo "user_id,password_hash,salt,is_superuser"
    for i in $(seq 0 63); do
        hash=$(printf '%s' "pw${i}salt${i}" | sha256sum | cut -d' ' -f1)
        echo "user${i},${hash},salt${i},false"
    done
} >"$WORK/users.csv"
export EXHOOKD_USERS_FILE="$WORK/users.csv"
WORKERS=4
start_exhookd users "$WORK/u" shared_users info "[shared]
users = 1MB"
check "starts with the users example" $? "$(cat "$WORK/users.log")"

# auth VERDICT PASSWORDS: 256 calls on 8 connections, all answered VERDICT
auth() {
    run_cmd "$BENCH" -t "127.0.0.1:$PORT" -r authenticate -c 8 -m 4 -n 256 -w 0 -q --check none \
        --username 'user%d' --password "$2" --ids 0-63 --expect "authenticate=$1"
    [ "$RC" -eq 0 ]
}
auth allow 'pw%d'
check "every user gets in with the password of the file" $? "$OUT $ERR"
auth deny 'pw%dx'
check "a wrong password is refused" $? "$OUT $ERR"
[ "$(grep -c "loaded 64 users from" "$WORK/users.log")" -eq 1 ]
check "one worker of four read the file" $? "$(grep loaded "$WORK/users.log")"
kill -HUP "$SERVER_PID"
wait_log "$WORK/users.log" "reloaded scripts" && auth allow 'pw%d' &&
    [ "$(grep -c "loaded 64 users from" "$WORK/users.log")" -eq 1 ]
check "a reload reads nothing again and still lets users in" $? "$OUT $ERR"

finish
