# SPDX-License-Identifier: GPL-3.0-or-later
#
# A thin wrapper around meson + ninja. The two commands of the README quick start:
#   make demo    install missing packages, build, run the demo (scripts/demo.sh)
#   make check   install missing packages, build, run the test suite, then the same suite
#                against an ASan + UBSan build, then the threaded parts against a
#                ThreadSanitizer build; the last line is "N passed, N failed"
# Other targets: build (default), check-sanitize, check-tsan, fuzz, bench, install, clean.
#
# Variables: BUILD (build dir, default build), SAN_BUILD (default build-san),
#            TSAN_BUILD (default build-tsan),
#            FUZZ_SECONDS (default 60), BENCH_ARGS (arguments of bench/run.sh),
#            PREFIX (install prefix, default /usr/local), DESTDIR (staged install),
#            MESON_SETUP_ARGS (more arguments for meson setup).

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

BUILD ?= build
SAN_BUILD ?= build-san
FUZZ_SECONDS ?= 60
FUZZ_BUILD ?= build-fuzz
PREFIX ?= /usr/local
MESON_SETUP_ARGS ?=

# Sanitizer runtime settings for the sanitizer run. A sanitizer error exits with 66, a
# status imago itself never uses, so a CLI test that checks exit codes notices it too;
# tests/run.sh additionally counts every sanitizer report as a failure.
SAN_EXCLUDE := --exclude-cli 'fs_*.sh' --exclude-cli smart.sh --exclude-cli nbd.sh \
	--exclude-cli crash.sh
SAN_ENV := ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:exitcode=66:detect_leaks=1:strict_string_checks=1:check_initialization_order=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=66
# The ThreadSanitizer pass: the pipeline, reader, target and chunk-cache unit tests and the
# multi-threaded CLI paths (tests/cli/threads.sh: create, verify, restore, clone with
# --threads 4). A race is a failure (tests/run.sh counts every report).
TSAN_BUILD ?= build-tsan
TSAN_ONLY := --only test_pipeline --only test_reader --only test_target --only test_cache \
	--only threads.sh
TSAN_ENV := TSAN_OPTIONS=halt_on_error=0:exitcode=66:second_deadlock_stack=1

# Targets run one after another (deps before build before the rest), even under make -j.
.NOTPARALLEL:

.PHONY: all build deps demo check check-sanitize build-sanitize check-tsan build-tsan fuzz bench \
	install clean

all: build

deps:
	@scripts/deps.sh

# Configure on first use (or when an earlier setup did not finish), then build.
build:
	@if [ ! -f $(BUILD)/build.ninja ]; then \
		rm -rf $(BUILD) && \
		meson setup $(BUILD) --prefix=$(PREFIX) $(MESON_SETUP_ARGS); \
	fi
	ninja -C $(BUILD)

build-sanitize:
	@if [ ! -f $(SAN_BUILD)/build.ninja ]; then \
		rm -rf $(SAN_BUILD) && \
		meson setup $(SAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false \
			-Dbuildtype=debug $(MESON_SETUP_ARGS); \
	fi
	ninja -C $(SAN_BUILD)

# Only what the TSan pass runs is built there.
build-tsan:
	@if [ ! -f $(TSAN_BUILD)/build.ninja ]; then \
		rm -rf $(TSAN_BUILD) && \
		meson setup $(TSAN_BUILD) -Db_sanitize=thread -Db_lundef=false \
			-Dbuildtype=debug $(MESON_SETUP_ARGS); \
	fi
	ninja -C $(TSAN_BUILD) imago tests/test_pipeline tests/test_reader tests/test_target \
		tests/test_cache

demo: deps build
	scripts/demo.sh $(BUILD)/imago

# The suite twice: the normal build, then the sanitizer build (test names prefixed
# "asan/"). The sanitizer pass leaves out the filesystem scripts (tests/cli/fs_*.sh,
# smart.sh): their time goes to mkfs, mount and fsck, not to imago, and the readers they
# exercise run under the sanitizers through the fuzz corpus replay, whose seeds are
# those same real filesystems. nbd.sh is left out too: its plugin, built with ASan, cannot
# be loaded by an nbdkit that is not (the code it runs is in mount.sh and the unit tests).
# It also leaves out crash.sh, whose point is where a kill lands in time, not memory
# safety (its create/restore/clone paths run under the sanitizers in the other scripts).
# A third pass runs the threaded parts under TSan. Each run writes its counts; the last
# line sums them all. A build that fails
# counts as one failure, so the last line is always the counts line.
check: deps
	@cnt=$$(mktemp -d); trap 'rm -rf "$$cnt"' EXIT; \
	if $(MAKE) --no-print-directory build; then \
		tests/run.sh --counts $$cnt/normal $(BUILD); \
	else \
		echo "FAIL: build: ninja -C $(BUILD) failed"; echo "0 1" > $$cnt/normal; \
	fi; \
	echo; \
	if $(MAKE) --no-print-directory build-sanitize; then \
		$(SAN_ENV) tests/run.sh --prefix asan/ $(SAN_EXCLUDE) --counts $$cnt/asan $(SAN_BUILD); \
	else \
		echo "FAIL: asan/build: ninja -C $(SAN_BUILD) failed"; echo "0 1" > $$cnt/asan; \
	fi; \
	echo; \
	if $(MAKE) --no-print-directory build-tsan; then \
		$(TSAN_ENV) tests/run.sh --prefix tsan/ $(TSAN_ONLY) --counts $$cnt/tsan $(TSAN_BUILD); \
	else \
		echo "FAIL: tsan/build: ninja -C $(TSAN_BUILD) failed"; echo "0 1" > $$cnt/tsan; \
	fi; \
	read -r p1 f1 < $$cnt/normal || { p1=0; f1=1; }; \
	read -r p2 f2 < $$cnt/asan || { p2=0; f2=1; }; \
	read -r p3 f3 < $$cnt/tsan || { p3=0; f3=1; }; \
	echo; \
	echo "== normal build: $$p1 passed, $$f1 failed; sanitizer build: $$p2 passed, $$f2 failed; tsan build: $$p3 passed, $$f3 failed"; \
	p=$$((p1 + p2 + p3)); f=$$((f1 + f2 + f3)); \
	echo "$$p passed, $$f failed"; \
	[ "$$f" -eq 0 ] && [ "$$p" -gt 0 ]

check-sanitize: build-sanitize
	@$(SAN_ENV) tests/run.sh --prefix asan/ $(SAN_EXCLUDE) $(SAN_BUILD)

check-tsan: build-tsan
	@$(TSAN_ENV) tests/run.sh --prefix tsan/ $(TSAN_ONLY) $(TSAN_BUILD)

fuzz:
	FUZZ_BUILD=$(abspath $(FUZZ_BUILD)) fuzz/run.sh $(FUZZ_SECONDS)

bench: build
	IMAGO=$(abspath $(BUILD))/imago bench/run.sh $(BENCH_ARGS)

install: build
	meson configure $(BUILD) -Dprefix=$(PREFIX)
	meson install -C $(BUILD)

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
