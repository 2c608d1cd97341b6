# reai: `make run` (demo server + live stream) and `make test` (every test).
BUILD      ?= build
ASAN_BUILD ?= build-asan
CMAKE_GEN  := -G Ninja
# Paths relative to the checkout in ccache keys, so every clone shares the cache.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: all deps build build-asan web test test-release test-asan run run-cluster bench fuzz clean

all: build

deps:
	@scripts/install-deps

# Release build into build/; the CLI is build/reai. Also the dashboard (web/dist).
build: deps web
	@cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release -DREAI_MODULES= >/dev/null
	@cmake --build $(BUILD)

# The dashboard: npm ci + vite build into web/dist; a quick no-op when up to date.
web:
	@scripts/web-build

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREAI_SANITIZE=ON \
	  -DREAI_BENCHMARKS=OFF -DREAI_MODULES= >/dev/null
	@cmake --build $(ASAN_BUILD)

# Every test: the release build, then the same suite under AddressSanitizer + UBSan.
test: deps
	@$(MAKE) --no-print-directory test-release
	@$(MAKE) --no-print-directory test-asan

test-release: build
	@cd $(BUILD) && ctest --output-on-failure -j2 --timeout 600

test-asan: build-asan
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp \
	  ctest --output-on-failure -j2 --timeout 900

# The main job: a demo tenant on embedded SQLite under ./var, a lead model
# trained on the shipped demo history, the server on :8080, live events.
# The dashboard from web/dist at / (the built-in plain page when it is missing).
run: build
	@$(BUILD)/reai demo --history fixtures/demo --data-dir var --model-dir var/models --port 8080 \
	  $$(test -f web/dist/index.html && echo --static-dir web/dist)

# The demo scaled out: PostgreSQL and Redis (Debian's, on loopback ports, data
# under var/cluster), two `reai serve` instances and nginx balancing them on
# :8088 with the dashboard. Ctrl-C stops everything (scripts/run-cluster).
run-cluster: build
	@scripts/run-cluster $(BUILD)

# Micro-benchmarks (Google Benchmark) and load tests; figures go to docs/RESULTS.md.
bench: build
	@scripts/run-benchmarks $(BUILD)

# libFuzzer on the JSON event parser and the GHL webhook parsers (clang from
# Debian); FUZZ_SECONDS of fuzzing each.
FUZZ_SECONDS ?= 60
fuzz: deps
	@CXX=clang++ CC=clang cmake -S . -B build-fuzz $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREAI_FUZZ=ON \
	  -DREAI_BENCHMARKS=OFF -DREAI_MODULES="core;models;features;scoring;store;bus;ghl;server" >/dev/null
	@cmake --build build-fuzz --target event_parser_fuzz ghl_parser_fuzz
	@mkdir -p build-fuzz/corpus build-fuzz/ghl-corpus
	@build-fuzz/src/server/event_parser_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build-fuzz/corpus
	@cp tests/fixtures/ghl/*.json build-fuzz/ghl-corpus/
	@build-fuzz/src/ghl/ghl_parser_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build-fuzz/ghl-corpus

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
