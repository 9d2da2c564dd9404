# The two commands of README.md: `make demo` (the moons demo) and `make test` (every test).
# Each sets up what it needs on a fresh machine: a virtual environment in .venv with the package built
# from this tree, and CMake builds of the C library in build/ (plain) and build-asan/ (sanitizers).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
JOBS   ?= 2

.PHONY: demo test test-c test-c-asan test-c-tsan test-fuzz test-python install bench fuzz clang locale clean

demo: install
	$(PY) -m micrograd_c demo

test: test-c test-c-asan test-c-tsan test-fuzz test-python

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# The package is rebuilt on every run; CMake's build folder under build/ keeps it incremental.
install: $(PY)
	$(PY) -m pip install --quiet ".[test,demo]"

test-c:
	cmake -S . -B build/c -DMG_WERROR=ON -DCMAKE_BUILD_TYPE=Release
	cmake --build build/c -j $(JOBS)
	ctest --test-dir build/c --output-on-failure -j $(JOBS)

test-c-asan:
	cmake -S . -B build/c-asan -DMG_WERROR=ON -DMG_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DMG_BUILD_BENCH=OFF
	cmake --build build/c-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --test-dir build/c-asan --output-on-failure -j $(JOBS)

# ThreadSanitizer: the per-thread value pools, the kernel pool, fit's threads and barrier
test-c-tsan:
	cmake -S . -B build/c-tsan -DMG_WERROR=ON -DMG_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMG_BUILD_BENCH=OFF \
		-DMG_BUILD_EXAMPLES=OFF
	cmake --build build/c-tsan -j $(JOBS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ctest --test-dir build/c-tsan --output-on-failure -j $(JOBS)

# A locale with a decimal comma for the locale tests, compiled into build/locale from Debian's locale sources
# (no root needed; LOCPATH points the C library there)
LOCALES := $(CURDIR)/build/locale
locale:
	@test -d $(LOCALES)/de_DE.UTF-8 || { mkdir -p $(LOCALES) && \
		localedef -i de_DE -f UTF-8 $(LOCALES)/de_DE.UTF-8 2>/dev/null || \
		echo "note: could not compile the de_DE.UTF-8 locale (install Debian's 'locales' package); the locale test will skip"; }

test-python: install locale
	LOCPATH=$(LOCALES) $(PY) -m pytest tests/python

bench: $(PY)
	$(PY) -m pip install --quiet ".[bench]"
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/bench_tensor.py $(BENCH_ARGS) | tee bench/results_tensor.md

# Every libFuzzer harness in fuzz/ for FUZZ_SECONDS each (needs clang; see fuzz/README.md).
# The test suite runs each for a short while; `make fuzz` for longer.
FUZZ_SECONDS ?= 30
fuzz: clang
	FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS) sh fuzz/run.sh

test-fuzz: clang
	FUZZ_SECONDS=15 JOBS=$(JOBS) sh fuzz/run.sh

# libFuzzer comes with clang: install it from Debian's packages when it is missing
clang:
	@command -v clang >/dev/null 2>&1 || { \
		echo "installing clang for the fuzz tests (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null; }

clean:
	rm -rf build $(VENV)
