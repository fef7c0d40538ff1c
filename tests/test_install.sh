#!/usr/bin/env bash
# What `cmake --install` lays out, the systemd unit, the Debian package and
# sd_notify: the files and their places, the installed config pointing at
# the installed scripts and passing `exhookd -t`, the unit passing
# `systemd-analyze verify`, the package's files, conffiles, maintainer
# scripts and library dependencies, and the master telling a notify socket
# READY=1 once it serves, STOPPING=1 on SIGTERM.
# Usage: test_install.sh <build dir> <source dir> <bindir> <confdir> <unitdir>
set -u
BUILD=$1
SRC=$2
BINDIR=$3
CONFDIR=$4
UNITDIR=$5
WORK=$(mktemp -d)
trap 'stop_servers; rm -rf "$WORK"' EXIT
. "$(dirname "$0")/testlib.sh"
ROOT=$WORK/root

# DESTDIR stages everything, /etc included when the prefix is /usr.
DESTDIR=$ROOT cmake --install "$BUILD" >"$WORK/install.log" 2>&1
check "cmake --install succeeds" $? "$(cat "$WORK/install.log")"

files=$(cd "$ROOT" && find . -type f | sed 's|^\.||' | sort)
expected=$(printf '%s\n' "$BINDIR/exhookd" "$BINDIR/exhook-bench" "$CONFDIR/exhook.ini" \
    "$CONFDIR/scripts/example.lua" "$UNITDIR/exhookd.service" \
    "$(dirname "$BINDIR")/share/doc/exhookd/README.md" | sort)
[ "$files" = "$expected" ]
check "installs the two programs, the config, the example script, the unit and the README" $? \
    "got: $files"

[ -x "$ROOT$BINDIR/exhookd" ] && [ -x "$ROOT$BINDIR/exhook-bench" ]
check "the programs are executable" $? "$(ls -l "$ROOT$BINDIR")"

INI=$ROOT$CONFDIR/exhook.ini
grep -qx "path = $CONFDIR/scripts" "$INI" &&
    sed "s|^path = $CONFDIR/scripts$|path = scripts|; s|$CONFDIR/tls/|etc/tls/|" "$INI" |
    cmp -s - "$SRC/etc/exhook.ini"
check "the installed config is etc/exhook.ini with [lua] path = $CONFDIR/scripts" $? \
    "$(diff "$SRC/etc/exhook.ini" "$INI")"

cmp -s "$ROOT$CONFDIR/scripts/example.lua" "$SRC/scripts/example.lua"
check "the installed example script is scripts/example.lua" $? ""

# The installed program on the installed config, its paths moved to the stage.
sed "s|$CONFDIR/|$ROOT$CONFDIR/|" "$INI" >"$WORK/staged.ini"
run_cmd "$ROOT$BINDIR/exhookd" -t -c "$WORK/staged.ini"
[ $RC -eq 0 ] && grep -qx "modules: example ($ROOT$CONFDIR/scripts/example.lua)" <<<"$OUT"
check "exhookd -t passes on the installed config and scripts" $? "rc=$RC out=$OUT err=$ERR"

UNIT=$ROOT$UNITDIR/exhookd.service
grep -qx "Type=notify" "$UNIT" &&
    grep -qx "ExecStartPre=$BINDIR/exhookd -t -c $CONFDIR/exhook.ini" "$UNIT" &&
    grep -qx "ExecStart=$BINDIR/exhookd -c $CONFDIR/exhook.ini" "$UNIT" &&
    grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$UNIT"
check "the unit checks the config with -t, runs the master as a notify service, reloads with SIGHUP" \
    $? "$(cat "$UNIT")"

# verify wants the programs the unit names to exist: the staged ones stand
# in. It exits 0 on an unknown key or a bad value, only saying so on stderr.
sed "s|$BINDIR/|$ROOT$BINDIR/|g" "$UNIT" >"$WORK/exhookd.service"
run_cmd systemd-analyze verify "$WORK/exhookd.service"
[ $RC -eq 0 ] && [ -z "$ERR" ]
check "systemd-analyze verify passes on the unit" $? "rc=$RC out=$OUT err=$ERR"

# The Debian package of this build (`make deb` makes it from a /usr build).
(cd "$WORK" && cpack -G DEB -B "$WORK/deb" --config "$BUILD/CPackConfig.cmake") >"$WORK/cpack.log" 2>&1
DEB=$(ls "$WORK"/deb/exhookd_*.deb 2>/dev/null)
check "cpack makes the package" $? "$(cat "$WORK/cpack.log")"
debfiles=$(dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ { print substr($6, 2) }' | sort)
[ "$debfiles" = "$expected" ]
check "the package holds the files cmake --install installs" $? "got: $debfiles"
mkdir "$WORK/control" && dpkg-deb -e "$DEB" "$WORK/control"
[ "$(cat "$WORK/control/conffiles")" = "$CONFDIR/exhook.ini
$CONFDIR/scripts/example.lua" ]
check "every file under $CONFDIR is a conffile" $? "$(cat "$WORK/control/conffiles")"
for script in postinst prerm postrm; do
    cmp -s "$WORK/control/$script" "$SRC/packaging/debian/$script" && [ -x "$WORK/control/$script" ]
    check "the package runs packaging/debian/$script" $? "$(ls -l "$WORK/control")"
done
depends=$(dpkg-deb -f "$DEB" Depends)
# The names carry the library's soname version, which a Debian release fixes.
for lib in 'libgrpc[0-9]+' 'liblua5\.4-0' 'libinih[0-9]+' 'libprotobuf-c[0-9]+' 'libssl[0-9]+' \
    'libsystemd0'; do
    grep -qE "(^|, )$lib( |,|$)" <<<"$depends"
    check "the package depends on $lib" $? "Depends: $depends"
done

# sd_notify, as systemd would see it with the master as the main pid.
free_port
printf '[server]\nlisten = 127.0.0.1:%s\nworkers = 1\n[lua]\npath = %s\ninit_module = example\n' \
    "$PORT" "$ROOT$CONFDIR/scripts" >"$WORK/notify.ini"
python3 "$(dirname "$0")/notify_listen.py" "$WORK/notify.sock" "$PORT" >"$WORK/notify.out" &
LISTENER=$!
wait_log "$WORK/notify.out" "^bound$"
NOTIFY_SOCKET=$WORK/notify.sock "$ROOT$BINDIR/exhookd" -c "$WORK/notify.ini" 2>"$WORK/notify.log" &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_log "$WORK/notify.out" "READY=1" 10
grep -qx "$SERVER_PID READY=1 listening=yes" "$WORK/notify.out"
check "the master (the main pid) sends READY=1 once the server listens" $? \
    "master=$SERVER_PID got: $(cat "$WORK/notify.out")"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
RC=$?
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"END=1", sys.argv[1])' \
    "$WORK/notify.sock"
wait "$LISTENER"
[ $RC -eq 0 ] && [ "$(cat "$WORK/notify.out")" = "bound
$SERVER_PID READY=1 listening=yes
$SERVER_PID STOPPING=1" ]
check "on SIGTERM the master sends STOPPING=1, and nothing else is sent" $? \
    "rc=$RC got: $(cat "$WORK/notify.out") log: $(cat "$WORK/notify.log")"

finish
