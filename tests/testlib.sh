# Shared by the shell tests: sourced, not run.
#   check NAME STATUS DETAILS  counts a check as passed when STATUS is 0
#   finish                     prints "N passed, N failed" and returns non-zero on a failure
failed=0
passed=0

check() {
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1)); echo "ok   $1"
    else
        failed=$((failed + 1)); echo "FAIL $1: $3"
    fi
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
