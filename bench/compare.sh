#!/usr/bin/env bash
# compare.sh: exhookd against the usual ways of writing an ExHook server, on
# this machine, over loopback. The three servers give the same answers
# (scripts/example.lua): exhookd (C + Lua, port 9410 + workers), peer-cpp (bare gRPC C++
# callback server, 9401), peer-python (grpcio + ThreadPoolExecutor(10), 9402).
# Installs what is missing, builds everything, then for ROUNDS rounds and each
# rpc of RPCS starts each server in turn and loads it with build/exhook-bench
# (8 connections x 16 in flight, DURATION s); then a latency run at 5,000
# calls/s (exhookd and peer-cpp). Prints one markdown table; exits 1 if any
# reply was wrong or any run failed.   Run from anywhere:  bench/compare.sh
#   env: ROUNDS=3 DURATION=10 RPCS="authenticate publish" WORKERS="1 2" (BUILD=build)
#   (WORKERS: one exhookd per worker count, on port 9410 + count)
#   FRAMING=split: every call's headers and message in two TCP writes, as EMQX
#   sends them (exhook-bench --split-frames); default: one write per call.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
RPCS=${RPCS:-"authenticate publish"}
WORKERS=${WORKERS:-"1 2"}
BUILD=${BUILD:-$ROOT/build}
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

say() { echo "compare: $*" >&2; }
die() { say "$*"; exit 1; }

# ---- dependencies and builds -------------------------------------------------

# The peers need more than exhookd does.
"$ROOT/tools/install-deps.sh" protobuf-compiler protobuf-compiler-grpc libgrpc++-dev \
    libprotobuf-dev python3-grpcio python3-protobuf g++
make -C "$ROOT" build BUILD="$BUILD" >&2
[ -x "$BENCH" ] || die "$BENCH was not built"
cmake -S "$ROOT/bench/peer-cpp" -B "$BUILD/bench-peer-cpp" -DCMAKE_BUILD_TYPE=Release >&2
cmake --build "$BUILD/bench-peer-cpp" -j "$(nproc)" >&2

# ---- servers -------------------------------------------------------------------

TMP=$(mktemp -d /tmp/exhook-compare.XXXXXX)
SERVER_PID="" BENCH_PID=""

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
    [ -z "$BENCH_PID" ] || stop_pid "$BENCH_PID" || true
    [ -z "$SERVER_PID" ] || stop_pid "$SERVER_PID" || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT
trap 'say terminated; exit 143' TERM

# exhookd's configuration: the shipped one, on loopback, with the repo's
# scripts; one per worker count.
for w in $WORKERS; do
    sed -e "s|^listen = .*|listen = 127.0.0.1:$((9410 + w))|" -e "s|^workers = .*|workers = $w|" \
        -e "s|^path = .*|path = $ROOT/scripts|" -e "s|^level = .*|level = warn|" \
        "$ROOT/etc/exhook.ini" >"$TMP/exhook-$w.ini"
    "$BUILD/exhookd" -t -c "$TMP/exhook-$w.ini" >&2
done

port_of() {
    case $1 in
        exhookd-*) echo $((9410 + ${1#exhookd-})) ;;
        peer-cpp) echo 9401 ;;
        peer-python) echo 9402 ;;
    esac
}
cmd_of() {
    case $1 in
        exhookd-*) echo "$BUILD/exhookd -c $TMP/exhook-${1#exhookd-}.ini" ;;
        peer-cpp) echo "$PEER_CPP 127.0.0.1:9401" ;;
        peer-python) echo "$PYTHON $ROOT/bench/peer-python/server.py 127.0.0.1:9402" ;;
    esac
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_server() {  # start $1, wait (at most 20 s) until it answers a call
    local name=$1 port deadline
    port=$(port_of "$name")
    ! port_open "$port" || die "port $port is already in use"
    local -a cmd
    read -ra cmd <<<"$(cmd_of "$name")"
    "${cmd[@]}" >>"$TMP/$name.log" 2>&1 &
    SERVER_PID=$!
    deadline=$((SECONDS + 20))
    while [ "$SECONDS" -lt "$deadline" ]; do
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -5 "$TMP/$name.log" >&2; die "$name exited at start"; }
        if port_open "$port" && timeout 5 "$BENCH" -t "127.0.0.1:$port" -i v3 -r authenticate \
                -c 1 -m 1 -n 1 -w 0 -q >/dev/null 2>&1; then
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

RESULTS=$TMP/results   # kind server rpc rc calls_per_s p99_us errors
PROBLEMS=""
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

run_bench() {  # kind server rpc extra-args...
    local kind=$1 name=$2 rpc=$3 rc=0 line calls p99 errors
    shift 3
    start_server "$name"
    timeout $((DURATION + 60)) "$BENCH" -t "127.0.0.1:$(port_of "$name")" -i v3 -r "$rpc" \
        "${LOAD[@]}" "$@" -q >"$TMP/bench.out" 2>"$TMP/bench.err" &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    stop_server "$name"
    line=$(grep '^exhook-bench: ' "$TMP/bench.out" | tail -n 1 || true)
    calls=$(field calls_per_s "$line"); p99=$(field p99_us "$line"); errors=$(field errors "$line")
    echo "$kind $name $rpc $rc ${calls:--} ${p99:--} ${errors:--}" >>"$RESULTS"
    say "$kind $name $rpc: ${line:-no result line} (exit $rc)"
    if [ "$rc" -ne 0 ] || [ "${errors:-x}" != 0 ]; then
        tail -3 "$TMP/bench.err" >&2 || true
        PROBLEMS="$PROBLEMS $name-$rpc-exit-$rc-errors-${errors:-?}"
    fi
}

EXHOOKDS=()
for w in $WORKERS; do EXHOOKDS+=("exhookd-$w"); done
SERVERS=("${EXHOOKDS[@]}" peer-cpp peer-python)
LAT_SERVERS=("${EXHOOKDS[@]}" peer-cpp)
: >"$RESULTS"
for round in $(seq "$ROUNDS"); do
    for rpc in $RPCS; do
        # Alternate the servers, and rotate who goes first from round to round.
        for i in "${!SERVERS[@]}"; do
            run_bench tput "${SERVERS[(i + round - 1) % ${#SERVERS[@]}]}" "$rpc"
        done
    done
    say "round $round/$ROUNDS done"
done
for round in $(seq "$ROUNDS"); do
    for i in "${!LAT_SERVERS[@]}"; do
        run_bench lat "${LAT_SERVERS[(i + round - 1) % ${#LAT_SERVERS[@]}]}" authenticate \
            -R "$LAT_RATE"
    done
done

# ---- the table -----------------------------------------------------------------

vals() {  # kind server rpc column -> that column of the good runs, sorted
    awk -v k="$1" -v s="$2" -v r="$3" -v c="$4" \
        '$1 == k && $2 == s && $3 == r && $4 == 0 && $7 == 0 && $c != "-" { print $c }' \
        "$RESULTS" | sort -n
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
label() {
    case $1 in
        exhookd-1) echo "exhookd (1 worker)" ;;
        exhookd-*) echo "exhookd (${1#exhookd-} workers)" ;;
        *) echo "$1" ;;
    esac
}

med_calls() { vals "$1" "$2" "$3" 5 | median; }
med_p99() { vals "$1" "$2" "$3" 6 | median; }

echo
echo "| server | rpc | calls/s min / median / max | p99 µs median | vs C++ | vs Python | errors |"
echo "|---|---|---|---|---|---|---|"
for rpc in $RPCS; do
    cpp=$(med_calls tput peer-cpp "$rpc"); py=$(med_calls tput peer-python "$rpc")
    for s in "${SERVERS[@]}"; do
        v=$(vals tput "$s" "$rpc" 5)
        med=$(median <<<"$v")
        echo "| $(label "$s") | $rpc | $(spread "$v") |" \
             "$(med_p99 tput "$s" "$rpc") | $(ratio "$med" "$cpp") | $(ratio "$med" "$py") |" \
             "$(errs tput "$s" "$rpc") |"
    done
done
cpp_p99=$(med_p99 lat peer-cpp authenticate)
for s in "${LAT_SERVERS[@]}"; do
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

- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
- machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1); servers and load tool share them
- rounds: $ROUNDS, servers alternated within each round; exhookd workers: $WORKERS
- servers (exhookd: etc/exhook.ini with listen 127.0.0.1:9410+workers, that many workers, path $ROOT/scripts, log level warn):
$(for s in "${EXHOOKDS[@]}"; do echo "  - \`$(cmd_of "$s")\`"; done)
  - \`$(cmd_of peer-cpp)\`
  - \`$(cmd_of peer-python)\`
- load: \`$BENCH -t 127.0.0.1:PORT -i v3 -r RPC ${LOAD[*]} -q\`
- latency: \`$BENCH -t 127.0.0.1:PORT -i v3 -r authenticate ${LOAD[*]} -R $LAT_RATE -q\`
EOF

if [ -n "$PROBLEMS" ]; then
    say "FAILED:$PROBLEMS"
    exit 1
fi
