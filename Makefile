# berth: `make run` builds and starts the platform, `make test` builds and runs every test.
JOBS ?= $(shell nproc)
DATA ?= ./data
RELEASE_DIR := build/release
ASAN_DIR := build/asan
export CCACHE_DIR ?= $(CURDIR)/.ccache

.PHONY: run build console test bench bench-gateway fuzz clean format

run: build
	scripts/console.sh optional
	$(RELEASE_DIR)/berth server --data $(DATA)

build:
	scripts/setup.sh build
	cmake -S . -B $(RELEASE_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBERTH_TESTS=OFF >/dev/null
	cmake --build $(RELEASE_DIR) -j $(JOBS)

# The web console (web/ → web/dist, served by berth server at /).
console:
	scripts/console.sh required

# Every test runs against the ASan+UBSan build: unit tests, real-process integration tests and
# the console (Vitest, then end-to-end in headless Chromium).
test:
	scripts/setup.sh test
	scripts/console.sh required
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBERTH_SANITIZE=ON -DBERTH_WERROR=ON \
	  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" >/dev/null
	cmake --build $(ASAN_DIR) -j $(JOBS)
	cd $(ASAN_DIR) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  ctest -j $(JOBS) --output-on-failure --timeout 600

bench: build
	scripts/setup.sh bench
	bench/api_bench.sh $(RELEASE_DIR)/berth

# The gateway against nginx and haproxy on the same upstream (bench/README.md).
bench-gateway: build
	scripts/setup.sh bench
	bench/gateway_bench.sh $(RELEASE_DIR)/berth

# libFuzzer runs of every parser of outside input; new interesting inputs land in the corpus,
# which `make test` replays.
FUZZ_SECONDS ?= 60
FUZZERS := api_body server_config http_query gateway_snapshot gateway_match gateway_rule json_depth router gateway_request
fuzz:
	scripts/setup.sh fuzz
	cmake -S . -B build/fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DBERTH_FUZZ=ON -DBERTH_TESTS=OFF >/dev/null
	cmake --build build/fuzz -j $(JOBS) --target $(addprefix fuzz_,$(FUZZERS))
	for f in $(FUZZERS); do build/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) fuzz/corpus/$$f || exit 1; done

clean:
	rm -rf build

format:
	clang-format -i $$(git ls-files 'src/*.cc' 'src/*.h')
