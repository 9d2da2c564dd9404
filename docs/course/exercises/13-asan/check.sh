#!/usr/bin/env bash
# check.sh [FILE]: compiles FILE (start.c by default) with AddressSanitizer and passes when ASan reports a
# heap-buffer-overflow (the exercise is to plant one).
. "$(dirname "$0")/../lib.sh"
FILE=${1:-$(dirname "$0")/start.c}
compile "$FILE" "$WORK/prog" -O0 -fsanitize=address -fno-omit-frame-pointer || fail "it does not compile"
set +e
report=$(ASAN_OPTIONS=detect_leaks=0 "$WORK/prog" 2>&1)
status=$?
set -e
echo "$report"
[ $status -ne 0 ] || fail "the program ran to the end: no bug planted yet"
echo "$report" | grep -q "heap-buffer-overflow" || fail "it failed, but ASan reported no heap-buffer-overflow"
echo "passed: 13-asan"
