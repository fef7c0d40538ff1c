#!/usr/bin/env bash
# The exhookd command as an operator meets it: exit codes and one-line
# errors for bad config, bad scripts, a missing folder and a taken port, and
# a clean stop on SIGTERM.
# Usage: test_cli.sh <exhookd binary> <source dir>
set -u
BIN=$1
SRC=$2
WORK=$(mktemp -d)
trap 'stop_servers; rm -rf "$WORK"' EXIT
. "$(dirname "$0")/testlib.sh"

# run <args...>: runs exhookd; sets RC, OUT, ERR
run() { run_cmd "$BIN" "$@"; }

cd "$SRC" || exit 1

run -t -c etc/exhook.ini
[ $RC -eq 0 ] && [ "$OUT" = "exhookd: configuration etc/exhook.ini and scripts are good
listen: 127.0.0.1:9000
modules: example (scripts/example.lua)
hooks: client.connected, client.disconnected, client.authenticate, client.authorize, message.publish [demo/#]" ]
check "-t on the shipped config prints listen, modules and hooks, exit 0" $? "rc=$RC out=$OUT err=$ERR"

run -t -c etc/exhook.ini --listen '[::1]:9555'
[ $RC -eq 0 ] && grep -qx 'listen: \[::1\]:9555' <<<"$OUT"
check "--listen overrides [server] listen, and -t prints the override" $? "rc=$RC out=$OUT err=$ERR"

run -t -c etc/exhook.ini -l 127.0.0.1
[ $RC -eq 2 ] && [ "$ERR" = "exhookd: --listen: expected host:port, got '127.0.0.1'" ]
check "a bad -l is one line in the config key's words, exit 2" $? "rc=$RC err=$ERR"

mkdir -p "$WORK/scripts"
printf '[lua]\npath = %s/scripts\ninit_module = broken\n' "$WORK" >"$WORK/broken.ini"
printf 'function on_client_connected(ci)\n  if then end\nend\n' >"$WORK/scripts/broken.lua"
run -t -c "$WORK/broken.ini"
[ $RC -eq 2 ] && [ "$(wc -l <"$WORK/err")" -eq 1 ] && grep -q "^exhookd: $WORK/scripts/broken.lua:2: unexpected symbol near 'then'$" <<<"$ERR"
check "a script syntax error is one line naming file and line, exit 2" $? "rc=$RC err=$ERR"

run -c "$WORK/broken.ini"
[ $RC -ne 0 ] && grep -q "broken.lua:2:" <<<"$ERR"
check "a script syntax error stops the server from starting" $? "rc=$RC err=$ERR"

printf '[server]\nlisten = 127.0.0.1:9000\nthreads = 4\n' >"$WORK/badkey.ini"
run -t -c "$WORK/badkey.ini"
[ $RC -eq 2 ] && [ "$ERR" = "exhookd: $WORK/badkey.ini:3: unknown key 'threads' in section [server]" ]
check "an unknown config key is one line with file and line, exit 2" $? "rc=$RC err=$ERR"

printf '[lua]\npath = %s/nowhere\n' "$WORK" >"$WORK/nofolder.ini"
run -t -c "$WORK/nofolder.ini"
[ $RC -eq 2 ] && [ "$ERR" = "exhookd: scripts folder '$WORK/nowhere' ([lua] path): No such file or directory" ]
check "a missing scripts folder is one line, exit 2" $? "rc=$RC err=$ERR"

run -c "$WORK/does-not-exist.ini"
[ $RC -eq 2 ] && [ "$(wc -l <"$WORK/err")" -eq 1 ] && grep -q "does-not-exist.ini" <<<"$ERR"
check "a missing config file is one line, exit 2" $? "rc=$RC err=$ERR"

run --version
[ $RC -eq 0 ] && grep -qE '^exhookd [0-9]+\.[0-9]+\.[0-9]+$' <<<"$OUT"
check "--version prints the version" $? "rc=$RC out=$OUT"

run --help
[ $RC -eq 0 ] && grep -q "^Usage: exhookd" <<<"$OUT"
check "--help prints usage" $? "rc=$RC out=$OUT"

run --frobnicate
[ $RC -eq 2 ]
check "an unknown option exits 2" $? "rc=$RC"

# A running server, a second one on its port, reloads, then SIGTERM.
mkdir -p "$WORK/live"
printf 'function on_client_connected(ci) end\n' >"$WORK/live/m.lua"
start_exhookd run "$WORK/live" m info
PID=$SERVER_PID
wait_log "$WORK/run.log" "listening on"
grep -q "listening on 127.0.0.1:$PORT (port $PORT) with 1 workers" "$WORK/run.log"
check "the server starts and says where it listens" $? "$(cat "$WORK/run.log")"

run -c "$WORK/run.ini"
[ $RC -eq 1 ] && grep -q "error \[master\] cannot listen on 127.0.0.1:$PORT: the address is in use" <<<"$ERR"
check "a port in use is one clear error line, exit 1" $? "rc=$RC err=$ERR"

run -c etc/exhook.ini --listen "127.0.0.1:$PORT"
[ $RC -eq 1 ] && grep -q "cannot listen on 127.0.0.1:$PORT: the address is in use" <<<"$ERR"
check "the server binds the --listen address, not the file's" $? "rc=$RC err=$ERR"

printf '[lua]\npath = scripts\ninit_module = example\n[log]\nformat = json\n' >"$WORK/json.ini"
run -c "$WORK/json.ini" --listen "127.0.0.1:$PORT"
[ $RC -eq 1 ] && python3 -c '
import json, sys
o = json.loads(sys.argv[1])
assert list(o) == ["time", "level", "thread", "message"], o
assert (o["level"], o["thread"]) == ("error", "master"), o
assert o["message"].startswith("cannot listen on 127.0.0.1:'"$PORT"': the address is in use"), o
' "$ERR"
check "[log] format = json makes the log one JSON object per line" $? "rc=$RC err=$ERR"


kill -USR1 "$PID"
wait_log "$WORK/run.log" "info  \[main\] stats: exhookd_build_info{version=\"[0-9.]*\"} 1$"
grep -q 'info  \[main\] stats: exhookd_lua_memory_bytes{worker="1"} [1-9][0-9]*$' "$WORK/run.log" &&
    ! grep -q "stats: grpc_server_started_total" "$WORK/run.log"
check "SIGUSR1 logs the metrics that are not zero" $? "$(cat "$WORK/run.log")"

printf 'function on_client_connected(ci)\n  if then end\nend\n' >"$WORK/live/m.lua"
kill -HUP "$PID"
wait_log "$WORK/run.log" "reload failed, the running scripts stay: $WORK/live/m.lua:2: unexpected symbol near 'then'"
check "SIGHUP with a broken script keeps the running scripts and says why" $? "$(cat "$WORK/run.log")"

printf 'function on_client_connected(ci) end\nfunction on_message_publish(m) end\nfunction deinit() io.open("%s/deinit.txt", "a"):write("x\\n") end\n' "$WORK" >"$WORK/live/m.lua"
kill -HUP "$PID"
wait_log "$WORK/run.log" "reloaded scripts (generation 1) in [0-9.]* ms; hooks: client.connected, message.publish$"
check "SIGHUP with a good edit loads the new scripts" $? "$(cat "$WORK/run.log")"

sed -i 's/^level = info$/level = debug/' "$WORK/run.ini"
kill -HUP "$PID"
wait_log "$WORK/run.log" "reload: changes to \[server\], \[tls\], \[log\], \[metrics\], \[http\] and \[shared\] take effect after a restart"
check "a reload that sees a [log] change says it needs a restart" $? "$(cat "$WORK/run.log")"

deinits=$(wc -l <"$WORK/deinit.txt" 2>/dev/null || echo 0)
kill -TERM "$PID"
wait "$PID"
RC=$?
PID=
[ $RC -eq 0 ] && grep -q "SIGTERM: stopping" "$WORK/run.log" && grep -q "stopped$" "$WORK/run.log" &&
    grep -qF 'stats: exhookd_reloads_total{result="ok"} 2' <(sed -n '/SIGTERM/,$p' "$WORK/run.log") &&
    grep -qF 'stats: exhookd_reloads_total{result="failed"} 1' <(sed -n '/SIGTERM/,$p' "$WORK/run.log") &&
    [ "$(wc -l <"$WORK/deinit.txt")" -eq $((deinits + 1)) ]
check "SIGTERM logs the final counters, runs deinit() and exits 0" $? "rc=$RC log=$(cat "$WORK/run.log")"

finish
