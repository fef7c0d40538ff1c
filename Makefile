# Thin wrapper over CMake. `make run` and `make test` install what is missing,
# build, and run exhookd or the test suite.

BUILD      ?= build
SAN_BUILD  ?= build-sanitize
CONFIG     ?= etc/exhook.ini
ARGS       ?=
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build run test test-plain test-sanitize clean
# The two suites use the same ports and must not run at the same time.
.NOTPARALLEL:

all: build

deps:
	@./tools/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j $(JOBS)

# Runs exhookd in the foreground with the shipped config and example scripts,
# or `make run CONFIG=path/to/exhook.ini ARGS="--listen 127.0.0.1:9001"`.
run: build
	$(BUILD)/exhookd -c $(CONFIG) $(ARGS)

# The whole suite twice: an optimised build with warnings as errors, then a
# build under AddressSanitizer and UndefinedBehaviorSanitizer.
test: test-plain test-sanitize

test-plain: build
	ctest --test-dir $(BUILD) --output-on-failure

test-sanitize: deps
	cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DEXHOOKD_SANITIZE=ON
	cmake --build $(SAN_BUILD) -j $(JOBS)
	ctest --test-dir $(SAN_BUILD) --output-on-failure

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
