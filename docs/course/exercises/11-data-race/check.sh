#!/usr/bin/env bash
# check.sh [FILE]: compiles FILE (start.c by default) with ThreadSanitizer and passes when the count is
# right and TSan reports no data race.
. "$(dirname "$0")/../lib.sh"
FILE=${1:-$(dirname "$0")/start.c}
compile "$FILE" "$WORK/prog" -O1 -fsanitize=thread || fail "it does not compile (read the first error above)"
set +e
out=$(TSAN_OPTIONS=halt_on_error=1 "$WORK/prog" 2>&1)
status=$?
set -e
echo "$out" | grep -q "ThreadSanitizer: data race" && fail "ThreadSanitizer reports a data race:
$(echo "$out" | head -12)"
[ $status -eq 0 ] || fail "the program exited with status $status:
$out"
[ "$out" = "count = 400000" ] || fail "it printed '$out', expected 'count = 400000'"
echo "passed: 11-data-race"
