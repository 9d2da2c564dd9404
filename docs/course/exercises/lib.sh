# lib.sh: what every exercise's check.sh shares (sourced, not run).
#
# build_library: compiles the library's sources (src/*.c) once into a static archive, and again only when a
# source or the header changes. compile FILE EXE [FLAGS...]: compiles the learner's FILE against it, with
# warnings as errors, as tests/python/test_docs.py compiles the course's C blocks.
set -eu
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BUILD=${MG_COURSE_BUILD:-$ROOT/build/course}
ARCHIVE=$BUILD/libmicrograd.a

build_library() {
    mkdir -p "$BUILD"
    if [ -f "$ARCHIVE" ] && [ -z "$(find "$ROOT/src" "$ROOT/include" -newer "$ARCHIVE" -print -quit)" ]; then
        return 0
    fi
    local src obj objects=()
    for src in "$ROOT"/src/*.c; do
        obj=$BUILD/$(basename "${src%.c}").o
        cc -std=c11 -O1 -I "$ROOT/include" -c "$src" -o "$obj"
        objects+=("$obj")
    done
    rm -f "$ARCHIVE"
    ar rcs "$ARCHIVE" "${objects[@]}"
}

compile() {
    local file=$1 exe=$2
    shift 2
    build_library
    cc -std=c11 -Wall -Wextra -Werror -g -I "$ROOT/include" "$@" "$file" "$ARCHIVE" -lm -lpthread -o "$exe"
}

# fail MESSAGE: says what is wrong and exits 1
fail() {
    echo "not yet: $*" >&2
    exit 1
}

# The folder where a check keeps what it builds, removed when it exits.
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
