#!/usr/bin/env bash
# reload.sh: what OnProviderLoaded costs the broker when every worker's
# init() loads a user table: scripts unchanged (kept) and changed (loaded
# again), one call at a time, as a broker loading the provider makes it.
#
# usage: bench/reload.sh EXHOOKD EXHOOK_BENCH [WORKERS] [USERS] [ROUNDS]
#   defaults: 16 workers, 100000 users, 5 rounds of each
# Prints each call's latency (exhook-bench's result line) and the server's
# log lines about the reloads (the time until every worker had its state).
set -u
BIN=$1
BENCH=$2
WORKERS=${3:-16}
USERS=${4:-100000}
ROUNDS=${5:-5}
WORK=$(mktemp -d)
# shellcheck source=../tests/testlib.sh
. "$(dirname "$0")/../tests/testlib.sh"
trap 'stop_servers; rm -rf "$WORK"' EXIT

mkdir "$WORK/scripts"
awk -v n="$USERS" 'BEGIN { for (i = 1; i <= n; i++) printf "user%d secret%d\n", i, i }' \
    >"$WORK/users.txt"
# Each user a record in a table of each worker's own, as a module written
# without a shared dictionary would keep them.
cat >"$WORK/scripts/users.lua" <<LUA
local users = {}
function init()
  for line in io.lines("$WORK/users.txt") do
    local name, password = line:match("^(%S+) (%S+)\$")
    users[name] = { password = password, groups = { "default" } }
  end
end
function on_client_authenticate(ci)
  local u = users[ci.username]
  return u ~= nil and u.password == ci.password
end
LUA

# As start_exhookd, with time for 16 init()s one after the other.
free_port || exit 1
printf '[server]\nlisten = 127.0.0.1:%s\nworkers = %s\n[lua]\npath = %s\ninit_module = users\nmemory_limit = 512MB\n' \
    "$PORT" "$WORKERS" "$WORK/scripts" >"$WORK/reload.ini"
"$BIN" -c "$WORK/reload.ini" 2>"$WORK/reload.log" &
PIDS+=("$!")
wait_log "$WORK/reload.log" "listening on" 300 || { cat "$WORK/reload.log"; exit 1; }

loaded() {
    "$BENCH" -t "127.0.0.1:$PORT" -r loaded --check none -n 1 -c 1 -m 1 -w 0 -q \
        --deadline 60000
}

for i in $(seq 1 "$ROUNDS"); do
    echo "unchanged $i: $(loaded)"
done
for i in $(seq 1 "$ROUNDS"); do
    echo "-- edit $i" >>"$WORK/scripts/users.lua"
    echo "changed $i: $(loaded)"
    # The next round starts once every worker has its state.
    wait_log "$WORK/reload.log" "generation $i loaded on" 120
done
grep -E "reload|reloaded|listening" "$WORK/reload.log" | sed 's/^[^ ]* //'
