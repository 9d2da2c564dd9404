#!/usr/bin/env bash
# check.sh [FILE]: compiles FILE (start.c by default) with UndefinedBehaviorSanitizer and passes when it
# runs clean and prints the right hash.
. "$(dirname "$0")/../lib.sh"
FILE=${1:-$(dirname "$0")/start.c}
compile "$FILE" "$WORK/prog" -fsanitize=undefined -fno-sanitize-recover=all || fail "it does not compile"
set +e
out=$("$WORK/prog" 2>&1)
status=$?
set -e
echo "$out" | grep -q "runtime error" && fail "UndefinedBehaviorSanitizer stopped it:
$out"
[ $status -eq 0 ] || fail "the program exited with status $status:
$out"
[ "$out" = "hash = 550784982" ] || fail "it printed '$out', expected 'hash = 550784982'"
echo "passed: 13-ubsan"
