# The two commands of README.md: `make demo` (the moons demo) and `make test` (every test).
# Each sets up what it needs on a fresh machine: a virtual environment in .venv with the package built
# from this tree, and CMake builds of the C library in build/ (plain) and build-asan/ (sanitizers).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
JOBS   ?= 2

.PHONY: demo test test-c test-c-asan test-python install bench fuzz clean

demo: install
	$(PY) -m micrograd_c demo

test: test-c test-c-asan test-python

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

test-python: install
	$(PY) -m pytest tests/python

bench: $(PY)
	$(PY) -m pip install --quiet ".[bench]"
	$(PY) bench/run.py $(BENCH_ARGS)

# Every libFuzzer harness in fuzz/ for FUZZ_SECONDS each (needs clang; see fuzz/README.md).
FUZZ_SECONDS ?= 30
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS) sh fuzz/run.sh

clean:
	rm -rf build $(VENV)
