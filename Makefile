# The two commands of the README: `make run` and `make test`. Both install what is missing first.
BUILD_DIR ?= build
CONFIG ?=
JOBS ?= $(shell nproc)

.PHONY: all deps deps-run deps-deb deb configure build run test bench bench-compare bench-scale asan fuzz clean

all: build

# What running needs (`make run`), or that and every tool the tests drive (`make test`).
deps:
	@./deploy/install-deps.sh test

deps-run:
	@./deploy/install-deps.sh run

deps-deb:
	@./deploy/install-deps.sh deb

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

configure: deps-run $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	./$(BUILD_DIR)/gateway/app/hkp-gateway $(if $(CONFIG),--config $(CONFIG),)

test: deps
	$(MAKE) build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 300

# The Debian package, built by dpkg-buildpackage from a staged copy of the tree: lands in
# $(BUILD_DIR)/deb (deploy/debian; `make test` builds, lints, installs and boots it).
deb: deps-deb
	./deploy/debian/build-deb.sh $(BUILD_DIR)/deb
	-lintian $(BUILD_DIR)/deb/hkp-gateway_*.deb

# Figures, not pass/fail: needs the test fixtures (made by the first test of `make test`).
bench: build
	@test -f $(BUILD_DIR)/tests/data/keys.env || ./tests/fixtures/make-fixtures.sh $(BUILD_DIR)/tests/data
	./$(BUILD_DIR)/bench/bench_fleet
	./$(BUILD_DIR)/bench/bench_keys
	./$(BUILD_DIR)/bench/bench_hardening
	./$(BUILD_DIR)/bench/bench_cold
	./$(BUILD_DIR)/bench/bench_limits
	./$(BUILD_DIR)/bench/bench_modern $(BUILD_DIR)/tests/data/alice.asc
	./bench/instructions_per_hit.sh $(BUILD_DIR)

# The gateway against nginx proxy_cache and nginx static on loopback; writes bench/RESULTS.md.
bench-compare: build
	./bench/compare $(BUILD_DIR)

# The cache at 1,000 and 1,000,000 keys (SCALE_KEYS); writes bench/SCALE.md. About 15 minutes.
bench-scale: build
	./bench/scale $(BUILD_DIR)

# Every test again under AddressSanitizer (a separate build tree): worth it after any change to
# coroutine plumbing (ARCHITECTURE.md, "Coding traps").
asan: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_CXX_FLAGS="-fsanitize=address -fno-omit-frame-pointer" \
	  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address"
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=0 ctest --output-on-failure -j $(JOBS) --timeout 600

# Every libFuzzer target (tests/fuzz) under ASan + UBSan for FUZZ_SECONDS each; prints executions
# per second and coverage per target. `make test` runs the same for a few seconds.
FUZZ_SECONDS ?= 60
fuzz: deps
	FUZZ_BUILD_DIR=$(CURDIR)/build-fuzz ./tests/fuzz/run.sh fuzz $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD_DIR) build-asan build-fuzz
