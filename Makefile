# The two commands (see README.md):
#   make demo   install what is missing, build, load the demo data, serve on http://localhost:8080
#   make test   install what is missing, build, run every test (plus the ASan/UBSan build)
# Everything else here is a building block of those two.

BUILD      ?= build
ASAN_BUILD ?= build-asan
DEMO_DB    ?= data/demo.db
PORT       ?= 8080
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: demo test deps build build-asan unit-asan bench format tidy clean

deps:
	./scripts/setup-deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD)

demo: build
	./scripts/demo.sh $(BUILD)/src/cli/jiceng $(DEMO_DB) $(PORT)

test: deps
	./scripts/test.sh

bench: build
	./bench/run_all.sh $(BUILD)

format:
	git ls-files '*.cpp' '*.h' | xargs clang-format -i

tidy: $(BUILD)/build.ninja
	git ls-files 'src/*.cpp' | xargs clang-tidy -p $(BUILD) --quiet

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
