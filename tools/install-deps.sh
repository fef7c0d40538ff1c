#!/bin/sh
# Installs the Debian packages exhookd needs to build and test, and any
# packages named as arguments (bench/compare.sh adds its peers'), if missing.
# Uses sudo when not run as root. Safe to run again: it installs nothing when
# everything is there.
set -eu

PACKAGES="gcc make cmake pkg-config libgrpc-dev protobuf-c-compiler libprotobuf-c-dev
liblua5.4-dev libinih-dev libcmocka-dev libssl-dev libsystemd-dev openssl python3
libmicrohttpd-dev prometheus clang-14 libclang-rt-14-dev llvm-14 systemd dpkg-dev
libcurl4-openssl-dev libhiredis-dev libcrypt-dev lua-cjson redis-server nginx libjansson-dev $*"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "exhookd: installing Debian packages:$missing"
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "exhookd: need root or sudo to install:$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
