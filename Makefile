# Thin wrapper over CMake. `make run` and `make test` install what is missing,
# build, and run exhookd or the test suite.

BUILD      ?= build
SAN_BUILD  ?= build-sanitize
DEB_BUILD  ?= build-deb
PREFIX     ?= /usr/local
CONFIG     ?= etc/exhook.ini
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps build run test test-plain test-sanitize install deb clean
# The two suites use the same ports and must not run at the same time.
.NOTPARALLEL:

all: build

deps:
	@./tools/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j $(JOBS)

# Runs exhookd in the foreground with the shipped config and example scripts.
run: build
	$(BUILD)/exhookd -c $(CONFIG)

# The whole suite twice: an optimised build with warnings as errors, then a
# build under AddressSanitizer and UndefinedBehaviorSanitizer.
test: test-plain test-sanitize

test-plain: build
	ctest --test-dir $(BUILD) --output-on-failure

test-sanitize: deps
	cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DEXHOOKD_SANITIZE=ON
	cmake --build $(SAN_BUILD) -j $(JOBS)
	ctest --test-dir $(SAN_BUILD) --output-on-failure

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
	rm -rf $(BUILD) $(SAN_BUILD) $(DEB_BUILD)
