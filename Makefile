# quicklane — two commands: `make run` and `make test`. Both install what they need.
BUILD ?= build
JOBS ?= $(shell nproc)
PORT ?= 8080
DEB_PACKAGES := cmake ninja-build g++ pkg-config libuv1-dev node-llhttp libcpp-httplib-dev \
                doctest-dev nlohmann-json3-dev libcjson-dev zlib1g-dev nettle-dev curl
SAN_PACKAGES := clang libclang-rt-14-dev

.PHONY: all deps build run test test-sanitize bench soak fuzz clean

all: build

# Installs only what is missing; apt-get update runs once, when needed.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps
	@[ -f $(BUILD)/build.ninja ] || cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

run: build
	PORT=$(PORT) ./$(BUILD)/examples/cpp/example_cpp_hello

# Each binding brings a test.sh that installs its toolchain's packages and runs
# its own runner (pytest, node --test, go test) against the core built above.
BINDING_TESTS := $(wildcard bindings/python/test.sh bindings/node/test.sh bindings/go/test.sh)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300
	@set -e; for t in $(BINDING_TESTS); do echo "== $$t"; bash $$t; done

# ASan+UBSan over the core and the C/C++ tests (build-asan), then TSan (build-tsan).
test-sanitize: deps
	@missing=""; for p in $(SAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; [ -z "$$missing" ] || apt-get install -y -qq $$missing
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DQL_SANITIZE=address,undefined
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 600 -E test_install
	cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DQL_SANITIZE=thread
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -j $(JOBS) --timeout 600 -L threads

# The whole side-by-side comparison (bench/README.md); it builds, installs its
# peers and writes docs/benchmarks.md itself. BENCH_ARGS=--smoke for a quick check.
bench:
	bench/run $(BENCH_ARGS)

# A bounded soak (SOAK_SECONDS, default 600; SOAK_MODE=fastpath for the native
# rules and static files) of mixed and hostile traffic:
# RSS and fd curves into bench/out/. Not part of `make test`.
soak: build
	tests/soak/run.sh

# libFuzzer targets (clang, ASan+UBSan, build-fuzz) for FUZZ_SECONDS each; see tests/fuzz/run.sh.
FUZZ_SECONDS ?= 600
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh

clean:
	rm -rf $(BUILD) build-asan build-tsan
