#!/usr/bin/env bash
# compare.sh: exhookd against the usual ways of writing an ExHook server, on
# this machine, over loopback, in one of three scenarios:
#
#   bench/compare.sh [base]    handlers without I/O. The three servers give the
#     same answers (scripts/example.lua): exhookd (C + Lua, port 9410 +
#     workers), peer-cpp (bare gRPC C++ callback server, 9401), peer-python
#     (grpcio + ThreadPoolExecutor(10), 9402). For ROUNDS rounds and each rpc
#     of RPCS, starts each server in turn and loads it with build/exhook-bench
#     (8 connections x 16 in flight, DURATION s); then a latency run at 5,000
#     calls/s (exhookd and peer-cpp).
#   bench/compare.sh io        authenticate, one lookup per call in a user
#     store: an HTTP auth service answering in IO_DELAY s (nginx + echo_sleep,
#     bench/upstream/nginx.conf.in) or a redis-server, both on free loopback
#     ports and started here, with users user0..user31 allowed and user32..63
#     unknown. Servers, all making the same decisions: exhookd with
#     bench/scripts/http_auth.lua and redis_auth.lua (9420 + workers), with
#     blocking_auth.lua (lua-socket, today's way), peer-node (@grpc/grpc-js +
#     fetch / redis from npm, 9403) and peer-aio (grpc.aio + aiohttp /
#     redis.asyncio, 9404). Same load, alternated rounds; each run is
#     preceded by a check of the decisions (allowed users, then unknown ones)
#     and its replies must be half allowed, half refused.
#   bench/compare.sh suspend   SUSPEND_CALLS calls at once (10 connections),
#     each held SUSPEND_SECONDS: by exhookd (1 worker) in exhook.sleep
#     (sleep_auth.lua) and in exhook.http against the auth service answering
#     after SUSPEND_SECONDS (http_auth.lua), and by the two peers the same
#     two ways (a timer: mode sleep; that service: mode http). Reports the
#     serving process's VmRSS before, at its peak while the calls wait, and
#     after, and the RSS added per suspended call.
#
# Installs what is missing, builds everything, prints markdown tables; exits 1
# if any reply was wrong or any run failed.   Run from anywhere.
#   env: ROUNDS=3 DURATION=10 RPCS="authenticate publish" WORKERS="1 2" (BUILD=build)
#   (WORKERS: one exhookd per worker count, on port 9410 / 9420 + count)
#   io: IO_DELAY=0.002 (seconds);  suspend: SUSPEND_CALLS=10000 SUSPEND_SECONDS=5
#   FRAMING=split: every call's headers and message in two TCP writes, as EMQX
#   sends them (exhook-bench --split-frames); default: one write per call.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCENARIO=${1:-base}
case $SCENARIO in
    base | io | suspend) ;;
    *) echo "usage: bench/compare.sh [base|io|suspend]   (see the comment at its top)" >&2; exit 2 ;;
esac
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
RPCS=${RPCS:-"authenticate publish"}
WORKERS=${WORKERS:-"1 2"}
BUILD=${BUILD:-$ROOT/build}
IO_DELAY=${IO_DELAY:-0.002}
SUSPEND_CALLS=${SUSPEND_CALLS:-10000}
SUSPEND_SECONDS=${SUSPEND_SECONDS:-5}
# Every suspended call's deadline (exhook-bench) and call_timeout (exhookd),
# seconds: room for the servers to take all the calls in before they end.
SUSPEND_DEADLINE=$((SUSPEND_SECONDS * 4 + 20))
LAT_RATE=5000
BENCH=$BUILD/exhook-bench
PEER_CPP=$BUILD/bench-peer-cpp/peer-cpp
PYTHON=/usr/bin/python3   # Debian's, which has python3-grpcio
LOAD=(-c 8 -m 16 -d "$DURATION" -w 1)
case ${FRAMING:-joined} in
    split) LOAD+=(--split-frames) ;;
    joined) ;;
    *) echo "compare: FRAMING must be split or joined" >&2; exit 2 ;;
esac
# The users of the io scenario's store: the first half allowed.
IO_USERS=(--username 'user%d' --ids 0-63)
IO_ALLOWED=(--username 'user%d' --ids 0-31)
IO_UNKNOWN=(--username 'user%d' --ids 32-63)

# The suspend scenario opens over 10,000 sockets in one process.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

say() { echo "compare: $*" >&2; }
die() { say "$*"; exit 1; }

# ---- dependencies and builds -------------------------------------------------

# The peers need more than exhookd does.
if [ "$SCENARIO" = base ]; then
    "$ROOT/tools/install-deps.sh" >&2 protobuf-compiler protobuf-compiler-grpc libgrpc++-dev \
        libprotobuf-dev python3-grpcio python3-protobuf g++
else
    # Node.js from Debian unless one is there already (with its own npm).
    node_pkgs=""
    command -v npm >/dev/null 2>&1 || node_pkgs="nodejs npm"
    # shellcheck disable=SC2086
    "$ROOT/tools/install-deps.sh" >&2 nginx libnginx-mod-http-echo redis-server lua-socket \
        protobuf-compiler python3-grpcio python3-protobuf python3-aiohttp python3-redis $node_pkgs
fi
make -C "$ROOT" build BUILD="$BUILD" >&2
[ -x "$BENCH" ] || die "$BENCH was not built"
if [ "$SCENARIO" = base ]; then
    cmake -S "$ROOT/bench/peer-cpp" -B "$BUILD/bench-peer-cpp" -DCMAKE_BUILD_TYPE=Release >&2
    cmake --build "$BUILD/bench-peer-cpp" -j "$(nproc)" >&2
else
    # Exact versions from package.json; no lock file (it would only add URLs).
    (cd "$ROOT/bench/peer-node" && npm install --no-package-lock --no-audit --no-fund >&2)
fi

# ---- processes -----------------------------------------------------------------

TMP=$(mktemp -d /tmp/exhook-compare.XXXXXX)
SERVER_PID="" BENCH_PID="" NGINX_PID="" REDIS_PID=""

stop_pid() {  # SIGTERM, wait up to 10 s, then SIGKILL; returns the exit status
    local pid=$1 i rc=0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        say "pid $pid ignored SIGTERM for 10 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || rc=$?
    return "$rc"
}
cleanup() {
    trap - EXIT INT TERM
    local pid
    for pid in "$BENCH_PID" "$SERVER_PID" "$NGINX_PID" "$REDIS_PID"; do
        [ -z "$pid" ] || stop_pid "$pid" || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT
trap 'say terminated; exit 143' TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {  # a loopback port nothing listens on, as the kernel picks one
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {  # $1 = port, $2 = pid, $3 = name: until it listens, at most 10 s
    local deadline=$((SECONDS + 10))
    until port_open "$1"; do
        kill -0 "$2" 2>/dev/null || { tail -5 "$TMP/$3.log" >&2; die "$3 exited at start"; }
        [ "$SECONDS" -lt "$deadline" ] || die "$3 does not listen on port $1 after 10 s"
        sleep 0.1
    done
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
cpu_percent() {  # ticks-before ticks-after time-before time-after -> % of one core
    awk -v c="$(($2 - $1))" -v hz="$(getconf CLK_TCK)" -v t="$3" -v u="$4" \
        'BEGIN { printf "%.1f\n", 100 * c / hz / (u - t) }'
}
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# ---- the user store of the io and suspend scenarios ----------------------------

# nginx answering GET /user/NAME after $1 seconds; exports AUTH_URL.
start_nginx() {
    local port dir=$TMP/nginx i
    port=$(free_port)
    mkdir -p "$dir"
    sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@DELAY@|$1|g" \
        "$ROOT/bench/upstream/nginx.conf.in" >"$dir/nginx.conf"
    for i in $(seq 0 31); do echo "/user/user$i /_allow;"; done >"$dir/users.map"
    nginx -p "$dir" -c "$dir/nginx.conf" >>"$TMP/nginx.log" 2>&1 &
    NGINX_PID=$!
    wait_port "$port" "$NGINX_PID" nginx
    export AUTH_URL="http://127.0.0.1:$port/user/"
    say "nginx: $AUTH_URL<name> answers after $1 s"
}
# The process that does nginx's work: its one worker.
nginx_worker() { pgrep -P "$NGINX_PID" | head -n 1; }

# redis-server with user:user0..31 set; exports REDIS_URL.
start_redis() {
    local port i
    port=$(free_port)
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
        >>"$TMP/redis.log" 2>&1 &
    REDIS_PID=$!
    wait_port "$port" "$REDIS_PID" redis
    for i in $(seq 0 31); do echo "SET user:user$i 1"; done | redis-cli -p "$port" >/dev/null
    [ "$(redis-cli -p "$port" dbsize)" = 32 ] || die "redis: the users were not loaded"
    export REDIS_URL="redis://127.0.0.1:$port/0"
    say "redis: $REDIS_URL"
}

# ---- servers -------------------------------------------------------------------
# Names: exhookd-W (scripts/example.lua, W workers), exhookd-MODULE-W
# (bench/scripts/MODULE_auth.lua), peer-cpp, peer-python, node-STORE,
# aio-STORE.

# exhookd's configuration for $1: the shipped one, on loopback, log level warn.
exhookd_config() {
    local name=$1 w=${1##*-} mod path=$ROOT/scripts module=example port
    local -a edits=()
    mod=${name#exhookd-}; mod=${mod%"$w"}; mod=${mod%-}
    [ -z "$mod" ] || path=$ROOT/bench/scripts module=${mod}_auth
    if [ "$SCENARIO" = suspend ]; then
        # The calls wait for seconds, all on one worker, with the warm-up's
        # calls perhaps still ending.
        edits=(-e "s|^call_timeout = .*|call_timeout = ${SUSPEND_DEADLINE}s|"
               -e "/^max_waiting_calls = /d" -e "/^\[server\]/a max_waiting_calls = $((SUSPEND_CALLS + 1000))")
    fi
    port=$(port_of "$name")
    sed -e "s|^listen = .*|listen = 127.0.0.1:$port|" -e "s|^workers = .*|workers = $w|" \
        -e "s|^path = .*|path = $path|" -e "s|^init_module = .*|init_module = $module|" \
        -e "s|^level = .*|level = warn|" "${edits[@]}" \
        "$ROOT/etc/exhook.ini" >"$TMP/$name.ini"
    "$BUILD/exhookd" -t -c "$TMP/$name.ini" >&2
}

port_of() {
    case $1 in
        exhookd-*-*) echo $((9420 + ${1##*-})) ;;
        exhookd-*) echo $((9410 + ${1#exhookd-})) ;;
        peer-cpp) echo 9401 ;;
        peer-python) echo 9402 ;;
        node-*) echo 9403 ;;
        aio-*) echo 9404 ;;
    esac
}
cmd_of() {
    case $1 in
        exhookd-*) echo "$BUILD/exhookd -c $TMP/$1.ini" ;;
        peer-cpp) echo "$PEER_CPP 127.0.0.1:9401" ;;
        peer-python) echo "$PYTHON $ROOT/bench/peer-python/server.py 127.0.0.1:9402" ;;
        node-*) echo "node $ROOT/bench/peer-node/server.js 127.0.0.1:9403 ${1#node-}" ;;
        aio-*) echo "$PYTHON $ROOT/bench/peer-aio/server.py 127.0.0.1:9404 ${1#aio-}" ;;
    esac
}
# The store a server asks: http, redis, sleep, or nothing (base).
store_of() {
    case $1 in
        exhookd-http-* | exhookd-blocking-* | node-http | aio-http) echo http ;;
        exhookd-redis-* | node-redis | aio-redis) echo redis ;;
        exhookd-sleep-* | node-sleep | aio-sleep) echo sleep ;;
    esac
}
# The process whose CPU the store spends.
store_pid() {
    case $(store_of "$1") in
        http) nginx_worker ;;
        redis) echo "$REDIS_PID" ;;
    esac
}
# The process that serves the calls: exhookd's child, or the peer itself.
serving_pid() {
    case $1 in
        exhookd-*) pgrep -P "$SERVER_PID" | head -n 1 ;;
        *) echo "$SERVER_PID" ;;
    esac
}
label() {
    local w=${1##*-} s=s
    [ "$w" != 1 ] || s=""
    case $1 in
        exhookd-blocking-*) echo "exhookd, lua-socket ($w worker$s)" ;;
        exhookd-*-*) echo "exhookd ($w worker$s)" ;;
        exhookd-*) echo "exhookd ($w worker$s)" ;;
        node-*) echo "peer-node" ;;
        aio-*) echo "peer-aio" ;;
        *) echo "$1" ;;
    esac
}

start_server() {  # start $1, wait (at most 20 s) until it answers a call
    local name=$1 port deadline probe=()
    port=$(port_of "$name")
    ! port_open "$port" || die "port $port is already in use"
    # The stores' servers answer example.lua's users otherwise.
    [ -z "$(store_of "$name")" ] || probe=(--check none --expect-status OK)
    local -a cmd
    read -ra cmd <<<"$(cmd_of "$name")"
    "${cmd[@]}" >>"$TMP/$name.log" 2>&1 &
    SERVER_PID=$!
    deadline=$((SECONDS + 20))
    while [ "$SECONDS" -lt "$deadline" ]; do
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -5 "$TMP/$name.log" >&2; die "$name exited at start"; }
        if port_open "$port" && timeout 15 "$BENCH" -t "127.0.0.1:$port" -i v3 -r authenticate \
                -c 1 -m 1 -n 1 -w 0 "${probe[@]}" -q >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    tail -5 "$TMP/$name.log" >&2
    die "$name does not answer on port $port after 20 s"
}

stop_server() {  # $1 = name; a server that does not stop cleanly is a failure
    local rc=0
    stop_pid "$SERVER_PID" || rc=$?
    SERVER_PID=""
    if [ "$rc" -ne 0 ]; then
        say "$1 exited with status $rc on SIGTERM"
        PROBLEMS="$PROBLEMS $1-stop-status-$rc"
    fi
}

# ---- runs ----------------------------------------------------------------------

RESULTS=$TMP/results   # kind server rpc rc calls_per_s p99_us errors store_cpu_% server_cpu_us_per_call
PROBLEMS=""
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

# A store's server answers the allowed users yes and the unknown ones no.
check_decisions() {  # name
    local port verdict ids
    port=$(port_of "$1")
    for verdict in stop_true stop_false; do
        if [ "$verdict" = stop_true ]; then ids=("${IO_ALLOWED[@]}"); else ids=("${IO_UNKNOWN[@]}"); fi
        if ! timeout 60 "$BENCH" -t "127.0.0.1:$port" -i v3 -r authenticate -c 4 -m 8 -n 200 -w 0 \
                "${ids[@]}" --expect "authenticate=$verdict" -q >"$TMP/check.out" 2>&1; then
            tail -3 "$TMP/check.out" >&2
            PROBLEMS="$PROBLEMS $1-decisions-$verdict"
        fi
    done
}

# Half the users of IO_USERS are allowed: so must half the replies be.
check_balance() {  # name result-line
    local calls yes no
    calls=$(field calls "$2"); yes=$(field stop_true "$2"); no=$(field stop_false "$2")
    if ! awk -v c="${calls:-0}" -v y="${yes:-0}" -v n="${no:-0}" \
            'BEGIN { exit !(c > 0 && y + n == c && y >= 0.45 * c && n >= 0.45 * c) }'; then
        say "$1: expected half stop_true, half stop_false, got calls=$calls stop_true=$yes stop_false=$no"
        PROBLEMS="$PROBLEMS $1-balance"
    fi
}

run_bench() {  # kind server rpc extra-args...
    local kind=$1 name=$2 rpc=$3 rc=0 line calls p99 errors store spid pid t0 t1 c0=0 s0 cpu=- per_call
    shift 3
    store=$(store_of "$name")
    start_server "$name"
    if [ -n "$store" ]; then
        check_decisions "$name"
        set -- "${IO_USERS[@]}" --check none --expect-status OK "$@"
    fi
    spid=$(store_pid "$name") pid=$(serving_pid "$name")
    [ -z "$spid" ] || c0=$(cpu_ticks "$spid")
    s0=$(cpu_ticks "$pid")
    t0=$(date +%s.%N)
    timeout $((DURATION + 60)) "$BENCH" -t "127.0.0.1:$(port_of "$name")" -i v3 -r "$rpc" \
        "${LOAD[@]}" "$@" -q >"$TMP/bench.out" 2>"$TMP/bench.err" &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    t1=$(date +%s.%N)
    [ -z "$spid" ] || cpu=$(cpu_percent "$c0" "$(cpu_ticks "$spid")" "$t0" "$t1")
    line=$(grep '^exhook-bench: ' "$TMP/bench.out" | tail -n 1 || true)
    calls=$(field calls_per_s "$line"); p99=$(field p99_us "$line"); errors=$(field errors "$line")
    # The server's CPU per call, over the warm-up and the run alike.
    per_call=$(awk -v p="$(cpu_percent "$s0" "$(cpu_ticks "$pid")" "$t0" "$t1")" -v r="${calls:-0}" \
        'BEGIN { if (r > 0) printf "%.0f\n", p * 1e4 / r; else print "-" }')
    stop_server "$name"
    echo "$kind $name $rpc $rc ${calls:--} ${p99:--} ${errors:--} $cpu $per_call" >>"$RESULTS"
    say "$kind $name $rpc: ${line:-no result line} (exit $rc), server CPU $per_call µs/call${store:+, store CPU $cpu%}"
    if [ "$rc" -ne 0 ] || [ "${errors:-x}" != 0 ]; then
        tail -3 "$TMP/bench.err" >&2 || true
        PROBLEMS="$PROBLEMS $name-$rpc-exit-$rc-errors-${errors:-?}"
    elif [ -n "$store" ]; then
        check_balance "$name" "$line"
    fi
}

# Runs every server of $@ once per round for each rpc of RPCS, in turn, and
# rotates who goes first from round to round.
run_rounds() {  # kind servers...
    local kind=$1 round rpc i
    shift
    local -a servers=("$@")
    for round in $(seq "$ROUNDS"); do
        for rpc in $RPCS; do
            for i in "${!servers[@]}"; do
                run_bench "$kind" "${servers[(i + round - 1) % ${#servers[@]}]}" "$rpc"
            done
        done
        say "$kind: round $round/$ROUNDS done"
    done
}

# ---- tables --------------------------------------------------------------------

vals() {  # kind server rpc column -> that column of the good runs, sorted
    awk -v k="$1" -v s="$2" -v r="$3" -v c="$4" \
        '$1 == k && $2 == s && $3 == r && $4 == 0 && $7 == 0 && $c != "-" { print $c }' \
        "$RESULTS" | sort -n
}
by_round() {  # kind server rpc -> calls/s of every run in order, "-" for a failed one
    awk -v k="$1" -v s="$2" -v r="$3" '$1 == k && $2 == s && $3 == r {
            printf "%s%s", n++ ? " / " : "", ($4 == 0 && $7 == 0) ? $5 : "-" }
        END { print n ? "" : "-" }' "$RESULTS"
}
median() {  # of sorted numbers, one a line
    awk 'NF { a[++n] = $1 } END { if (!n) print "-"; else printf "%.0f\n", n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }'
}
spread() {  # sorted numbers -> "min / median / max"
    awk -v m="$(median <<<"$1")" 'NF { a[++n] = $1 } END { print n ? a[1] " / " m " / " a[n] : "- / - / -" }' <<<"$1"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f×\n", a / b }'; }
errs() {  # "0", or the error count plus how many runs exited non-zero
    awk -v k="$1" -v s="$2" -v r="$3" '$1 == k && $2 == s && $3 == r {
            if ($7 != "-") e += $7; if ($4 != 0) bad++ }
        END { printf "%d%s\n", e, bad ? sprintf(", failed runs: %d", bad) : "" }' "$RESULTS"
}
med_calls() { vals "$1" "$2" "$3" 5 | median; }
med_p99() { vals "$1" "$2" "$3" 6 | median; }
machine() {
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "- machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1); servers, stores and load tool share them"
}
server_list() {  # servers... -> their command lines
    local s
    for s in "$@"; do echo "  - \`$(cmd_of "$s")\`"; done
}

# ---- base: handlers without I/O ------------------------------------------------

scenario_base() {
    local w rpc s v med cpp py p99 cpp_p99 round i
    local -a exhookds=() servers lat_servers
    for w in $WORKERS; do exhookds+=("exhookd-$w"); exhookd_config "exhookd-$w"; done
    servers=("${exhookds[@]}" peer-cpp peer-python)
    lat_servers=("${exhookds[@]}" peer-cpp)
    run_rounds tput "${servers[@]}"
    for round in $(seq "$ROUNDS"); do
        for i in "${!lat_servers[@]}"; do
            run_bench lat "${lat_servers[(i + round - 1) % ${#lat_servers[@]}]}" authenticate \
                -R "$LAT_RATE"
        done
    done

    echo
    echo "| server | rpc | calls/s min / median / max | p99 µs median | vs C++ | vs Python | errors |"
    echo "|---|---|---|---|---|---|---|"
    for rpc in $RPCS; do
        cpp=$(med_calls tput peer-cpp "$rpc"); py=$(med_calls tput peer-python "$rpc")
        for s in "${servers[@]}"; do
            v=$(vals tput "$s" "$rpc" 5)
            med=$(median <<<"$v")
            echo "| $(label "$s") | $rpc | $(spread "$v") |" \
                 "$(med_p99 tput "$s" "$rpc") | $(ratio "$med" "$cpp") | $(ratio "$med" "$py") |" \
                 "$(errs tput "$s" "$rpc") |"
        done
    done
    cpp_p99=$(med_p99 lat peer-cpp authenticate)
    for s in "${lat_servers[@]}"; do
        v=$(vals lat "$s" authenticate 5)
        p99=$(med_p99 lat "$s" authenticate)
        echo "| $(label "$s") | authenticate at $LAT_RATE/s offered | $(spread "$v") |" \
             "$p99 | p99 $(ratio "$p99" "$cpp_p99") | - |" \
             "$(errs lat "$s" authenticate) |"
    done
    cat <<EOF

Ratios: the row's median calls/s over the peer's (higher is better); on the
$LAT_RATE/s rows, the row's median p99 over peer-cpp's (lower is better).
Runs with errors or a non-zero exit count only in the errors column.

$(machine)
- rounds: $ROUNDS, servers alternated within each round; exhookd workers: $WORKERS
- servers (exhookd: etc/exhook.ini with listen 127.0.0.1:9410+workers, that many workers, path $ROOT/scripts, log level warn):
$(server_list "${servers[@]}")
- load: \`$BENCH -t 127.0.0.1:PORT -i v3 -r RPC ${LOAD[*]} -q\`
- latency: \`$BENCH -t 127.0.0.1:PORT -i v3 -r authenticate ${LOAD[*]} -R $LAT_RATE -q\`
EOF
}

# ---- io: one lookup in a user store per call -----------------------------------

scenario_io() {
    local w s store med rpc=authenticate
    local -a http=() redis=() blocking=() exhookds=()
    RPCS=$rpc
    start_nginx "$IO_DELAY"
    start_redis
    for w in $WORKERS; do
        http+=("exhookd-http-$w"); redis+=("exhookd-redis-$w"); blocking+=("exhookd-blocking-$w")
    done
    for s in "${http[@]}" "${redis[@]}" "${blocking[@]}"; do exhookd_config "$s"; done
    # One rotation over all of them: each round measures every server once.
    local -a servers=("${http[@]}" node-http aio-http "${blocking[@]}" "${redis[@]}" node-redis aio-redis)
    run_rounds io "${servers[@]}"

    echo
    echo "| store | server | calls/s by round | median | p99 µs median | server CPU µs/call median | store CPU % median | errors |"
    echo "|---|---|---|---|---|---|---|---|"
    for s in "${servers[@]}"; do
        store=$(store_of "$s")
        echo "| $store | $(label "$s") | $(by_round io "$s" $rpc) | $(med_calls io "$s" $rpc) |" \
             "$(med_p99 io "$s" $rpc) | $(vals io "$s" $rpc 9 | median) | $(vals io "$s" $rpc 8 | median) |" \
             "$(errs io "$s" $rpc) |"
    done
    echo
    echo "| exhookd | store | vs peer-node | vs peer-aio | vs exhookd with lua-socket |"
    echo "|---|---|---|---|---|"
    for w in $WORKERS; do
        med=$(med_calls io "exhookd-http-$w" $rpc)
        echo "| $(label "exhookd-http-$w") | http | $(ratio "$med" "$(med_calls io node-http $rpc)") |" \
             "$(ratio "$med" "$(med_calls io aio-http $rpc)") |" \
             "$(ratio "$med" "$(med_calls io "exhookd-blocking-$w" $rpc)") |"
        med=$(med_calls io "exhookd-redis-$w" $rpc)
        echo "| $(label "exhookd-redis-$w") | redis | $(ratio "$med" "$(med_calls io node-redis $rpc)") |" \
             "$(ratio "$med" "$(med_calls io aio-redis $rpc)") | - |"
    done
    cat <<EOF

Ratios: exhookd's median calls/s over the other server's, for the same store
(higher is better). Server CPU: the CPU time of the process serving the calls
(exhookd's child, the peer) per call answered. Store CPU: the CPU time of
nginx's worker or redis-server during the run, in % of one core (100 would
make the store the bottleneck).
Every run is preceded by a check of the decisions: 200 calls as allowed
users answered STOP_AND_RETURN true, 200 as unknown users STOP_AND_RETURN
false; in the measured runs half the replies must be each.

$(machine)
- rounds: $ROUNDS, servers alternated within each round; exhookd workers: $WORKERS
- stores: nginx $(nginx -v 2>&1 | sed 's|.*/||') + echo_sleep $IO_DELAY s (bench/upstream/nginx.conf.in, 1 worker process); $(redis-server --version | awk '{ print $1, $2, $3 }'); users user0..31 allowed, user32..63 unknown
- servers (exhookd: etc/exhook.ini with listen 127.0.0.1:9420+workers, that many workers, path bench/scripts, init_module MODULE_auth, log level warn; env AUTH_URL=$AUTH_URL REDIS_URL=$REDIS_URL):
$(server_list "${servers[@]}")
- load: \`$BENCH -t 127.0.0.1:PORT -i v3 -r authenticate ${LOAD[*]} ${IO_USERS[*]} --check none --expect-status OK -q\`
EOF
}

# ---- suspend: many calls waiting at once ---------------------------------------

# Sends SUSPEND_CALLS calls at once to $1 and samples the serving process's
# VmRSS every 0.1 s until they are answered.
run_suspend() {  # name
    local name=$1 port pid before peak after rss rc=0 line
    port=$(port_of "$name")
    start_server "$name"
    pid=$(serving_pid "$name")
    # Connections up and the first allocations made: 100 calls at once.
    timeout 60 "$BENCH" -t "127.0.0.1:$port" -i v3 -r authenticate -c 10 -m 10 -n 100 -w 0 \
        "${IO_ALLOWED[@]}" --check none --expect-status OK -q >/dev/null 2>&1 || true
    before=$(rss_kb "$pid") peak=0
    timeout $((SUSPEND_DEADLINE + 60)) "$BENCH" -t "127.0.0.1:$port" -i v3 -r authenticate \
        -c 10 -m $((SUSPEND_CALLS / 10)) -n "$SUSPEND_CALLS" -w 0 "${IO_ALLOWED[@]}" \
        --deadline $((SUSPEND_DEADLINE * 1000)) --check none --expect-status OK \
        --max-errors "$SUSPEND_CALLS" -q \
        >"$TMP/bench.out" 2>"$TMP/bench.err" &
    BENCH_PID=$!
    while kill -0 "$BENCH_PID" 2>/dev/null; do
        rss=$(rss_kb "$pid")
        [ "$rss" -le "$peak" ] || peak=$rss
        sleep 0.1
    done
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    after=$(rss_kb "$pid")
    stop_server "$name"
    line=$(grep '^exhook-bench: ' "$TMP/bench.out" | tail -n 1 || true)
    say "suspend $name: before ${before} kB, peak ${peak} kB, after ${after} kB; ${line:-no result line} (exit $rc)"
    [ "$rc" -eq 0 ] || PROBLEMS="$PROBLEMS $name-suspend-exit-$rc"
    echo "| $(label "$name") | $(store_of "$name") | $(field calls "$line") |" \
         "$(field status_OK "$line") | $(field p50_us "$line") | $(field max_us "$line") |" \
         "$((before / 1024)) / $((peak / 1024)) / $((after / 1024)) |" \
         "$(awk -v a="$before" -v b="$peak" -v n="$SUSPEND_CALLS" 'BEGIN { printf "%.2f\n", (b - a) / n }') |" \
         >>"$TMP/suspend.rows"
}

scenario_suspend() {
    local s
    local -a servers=(exhookd-sleep-1 node-sleep aio-sleep exhookd-http-1 node-http aio-http)
    export SUSPEND_SECONDS
    start_nginx "$SUSPEND_SECONDS"
    for s in exhookd-sleep-1 exhookd-http-1; do exhookd_config "$s"; done
    : >"$TMP/suspend.rows"
    for s in "${servers[@]}"; do run_suspend "$s"; done

    echo
    echo "| server | waits in | calls | answered OK | p50 µs | max µs | VmRSS MB before / peak / after | kB added per suspended call |"
    echo "|---|---|---|---|---|---|---|---|"
    cat "$TMP/suspend.rows"
    cat <<EOF

$SUSPEND_CALLS calls sent at once (10 connections × $((SUSPEND_CALLS / 10)) in flight), each
held $SUSPEND_SECONDS s, with a deadline of $SUSPEND_DEADLINE s: with a p50 near $SUSPEND_SECONDS s
and a max under twice that, they all waited at the same time.
VmRSS of the process that serves the calls (exhookd's child, the peer), before: after
100 calls at once; peak: sampled every 0.1 s while the calls wait; per call:
(peak - before) / $SUSPEND_CALLS. Calls not answered OK count in the columns, not as a failure.

$(machine)
- waits in: sleep = exhookd's sleep_auth.lua (exhook.sleep($SUSPEND_SECONDS)), the peers' mode sleep (setTimeout, asyncio.sleep); http = exhookd's http_auth.lua, the peers' mode http, against nginx answering after $SUSPEND_SECONDS s
- exhookd: 1 worker, call_timeout ${SUSPEND_DEADLINE}s, max_waiting_calls $((SUSPEND_CALLS + 1000)), path bench/scripts
- servers:
$(server_list "${servers[@]}")
- load: \`$BENCH -t 127.0.0.1:PORT -i v3 -r authenticate -c 10 -m $((SUSPEND_CALLS / 10)) -n $SUSPEND_CALLS -w 0 ${IO_ALLOWED[*]} --deadline $((SUSPEND_DEADLINE * 1000)) --check none --expect-status OK -q\`
EOF
}

: >"$RESULTS"
"scenario_$SCENARIO"

if [ -n "$PROBLEMS" ]; then
    say "FAILED:$PROBLEMS"
    exit 1
fi
