#!/bin/sh
# Runs fuzz_dispatch for a while.
#   run.sh FUZZER SECONDS CORPUS SEEDS [libFuzzer flags...]
# New inputs go to CORPUS, which is kept between runs; CORPUS "-" is a
# scratch folder removed afterwards, so the run starts from SEEDS alone (the
# test suite's run). Crash inputs are written to crashes/ next to FUZZER.
# exhookd's log is discarded (-close_fd_mask=2); run FUZZER on a crash file
# to see it.
set -eu

fuzzer=$1 seconds=$2 corpus=$3 seeds=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
artifacts=$(dirname "$fuzzer")/crashes
mkdir -p "$artifacts"

scratch=""
if [ "$corpus" = "-" ]; then
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/exhookd-fuzz-XXXXXX")
    trap 'rm -rf "$scratch"' EXIT
    corpus=$scratch
fi
mkdir -p "$corpus"

# -timeout: far above the 20 ms time limit, so only a real hang trips it.
"$fuzzer" -max_total_time="$seconds" -timeout=10 -close_fd_mask=2 -print_final_stats=1 \
    -dict="$here/dispatch.dict" -artifact_prefix="$artifacts/" "$@" "$corpus" "$seeds"
