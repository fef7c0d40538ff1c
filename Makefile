# Thin wrapper over CMake. `make run` and `make test` install what is missing,
# build, and run exhookd or the test suite.

BUILD      ?= build
SAN_BUILD  ?= build-sanitize
DEB_BUILD  ?= build-deb
PREFIX     ?= /usr/local
CONFIG     ?= etc/exhook.ini
ARGS       ?=
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
# The fuzzer (README, Fuzzing): clang's libFuzzer, in builds of its own.
FUZZ_BUILD     ?= build-fuzz
FUZZ_COV_BUILD ?= build-fuzz-coverage
FUZZ_SECONDS   ?= 600
FUZZ_CC        ?= clang-14
LLVM_PROFDATA  ?= llvm-profdata-14
LLVM_COV       ?= llvm-cov-14

.PHONY: all deps build run test test-plain test-sanitize test-fuzz fuzz-build fuzz \
        fuzz-coverage install deb clean
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
# build under AddressSanitizer and UndefinedBehaviorSanitizer; then a minute
# of fuzzing.
test: test-plain test-sanitize test-fuzz

test-plain: build
	ctest --test-dir $(BUILD) --output-on-failure

test-sanitize: deps
	cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DEXHOOKD_SANITIZE=ON
	cmake --build $(SAN_BUILD) -j $(JOBS)
	ctest --test-dir $(SAN_BUILD) --output-on-failure

fuzz-build: deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=$(FUZZ_CC) \
	      -DEXHOOKD_FUZZ=ON -DEXHOOKD_TESTS=OFF
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

# The test suite's run: one minute from the seeds, with a fixed seed.
test-fuzz: fuzz-build
	ctest --test-dir $(FUZZ_BUILD) --output-on-failure

# Fuzzes for FUZZ_SECONDS. The corpus in $(FUZZ_BUILD)/corpus grows from run
# to run; crash inputs are written to $(FUZZ_BUILD)/fuzz/crashes/.
fuzz: fuzz-build
	fuzz/run.sh $(FUZZ_BUILD)/fuzz/fuzz_dispatch $(FUZZ_SECONDS) $(FUZZ_BUILD)/corpus \
	            $(FUZZ_BUILD)/fuzz/seeds

# Line coverage of src/ by the seeds and the corpus `make fuzz` built.
fuzz-coverage: deps
	cmake -S . -B $(FUZZ_COV_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	      -DCMAKE_C_COMPILER=$(FUZZ_CC) -DEXHOOKD_FUZZ=ON -DEXHOOKD_FUZZ_COVERAGE=ON \
	      -DEXHOOKD_TESTS=OFF
	cmake --build $(FUZZ_COV_BUILD) -j $(JOBS)
	mkdir -p $(FUZZ_BUILD)/corpus
	LLVM_PROFILE_FILE=$(FUZZ_COV_BUILD)/fuzz.profraw $(FUZZ_COV_BUILD)/fuzz/fuzz_dispatch \
	    -runs=0 -close_fd_mask=2 $(FUZZ_BUILD)/corpus $(FUZZ_COV_BUILD)/fuzz/seeds
	$(LLVM_PROFDATA) merge -o $(FUZZ_COV_BUILD)/fuzz.profdata $(FUZZ_COV_BUILD)/fuzz.profraw
	$(LLVM_COV) report $(FUZZ_COV_BUILD)/fuzz/fuzz_dispatch \
	    -instr-profile=$(FUZZ_COV_BUILD)/fuzz.profdata $(CURDIR)/src

# Installs the programs in PREFIX/bin, the config and example scripts in
# PREFIX/etc/exhookd (/etc/exhookd when PREFIX is /usr) and the systemd unit.
# DESTDIR=/some/folder stages it there.
install: build
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build $(BUILD) -j $(JOBS)
	cmake --install $(BUILD)

# The Debian package, $(DEB_BUILD)/exhookd_<version>_<arch>.deb, from its
# own build installed to /usr.
deb: deps
	cmake -S . -B $(DEB_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
	      -DEXHOOKD_TESTS=OFF
	cmake --build $(DEB_BUILD) -j $(JOBS)
	cd $(DEB_BUILD) && cpack -G DEB

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(DEB_BUILD) $(FUZZ_BUILD) $(FUZZ_COV_BUILD)
