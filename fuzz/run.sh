#!/bin/sh
# Builds every libFuzzer harness (fuzz/fuzz_*.c) with clang, AddressSanitizer and UndefinedBehaviorSanitizer,
# then runs each for FUZZ_SECONDS (default 30) from its seeds in fuzz/corpus_<name>/.
#
#     fuzz/run.sh            every harness
#     fuzz/run.sh csv        only fuzz/fuzz_csv.c
#
# A new harness needs no change here: add fuzz/fuzz_<name>.c (and a few tiny seed files in
# fuzz/corpus_<name>/). Inputs the fuzzer finds go to build/fuzz/corpus_<name>/, so the seeds in the
# tree stay small; a crashing input is saved as build/fuzz/crash-<name>-* and the script exits 1.
# FUZZ_CC picks the compiler (default clang); FUZZ_ARGS adds libFuzzer flags (e.g. -jobs=4).
set -eu
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-30}
build=${FUZZ_BUILD:-build/fuzz}
cc=${FUZZ_CC:-clang}

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "fuzz/run.sh: $cc not found: libFuzzer needs clang (Debian: apt-get install clang)" >&2
    exit 2
fi
cmake -S . -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMG_FUZZ=ON \
    -DMG_BUILD_TESTS=OFF -DMG_BUILD_EXAMPLES=OFF -DMG_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "${JOBS:-2}"

if [ $# -eq 0 ]; then
    set -- $(for src in fuzz/fuzz_*.c; do basename "$src" .c | sed 's/^fuzz_//'; done)
fi
failed=""
for name in "$@"; do
    work="$build/corpus_$name"
    mkdir -p "$work"
    seeds=""
    [ -d "fuzz/corpus_$name" ] && seeds="fuzz/corpus_$name"
    echo "== fuzz_$name: $seconds s"
    # shellcheck disable=SC2086 # FUZZ_ARGS and seeds are lists of words
    if ! "$build/fuzz_$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/crash-$name-" ${FUZZ_ARGS:-} "$work" $seeds; then
        failed="$failed $name"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz/run.sh: failed:$failed (inputs saved as $build/crash-*)" >&2
    exit 1
fi
echo "fuzz/run.sh: every harness ran $seconds s without a failure"
