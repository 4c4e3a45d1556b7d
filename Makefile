# cardd — national ID card bureau backend.
#
#   make            build the service, the operator CLI and the emulators
#   make check      unit and integration tests (installs what is missing)
#   make check SAN=1  the same under AddressSanitizer + UBSan
#   make check TSAN=1 the same under ThreadSanitizer (into build-tsan)
#   make check CC=clang  the same built with clang (into build-clang)
#   make valgrind   the driver and unit tests under valgrind
#   make bench      benchmarks, as ratios against a baseline measured in the same run
#   make fuzz       every libFuzzer harness (tests/fuzz/) for FUZZ_SECONDS each (clang, ASan+UBSan)
#   make demo       the whole chain on emulated devices and a private database;
#                   it prints the pages' URLs (make demo KEEP=1: up until Ctrl-C)
#   make screenshots  the pages' screenshots in docs/screenshots (their browser test)
#   make format     apply .clang-format to the tree (make format-check: fail on drift)
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX  ?= /usr/local
DESTDIR ?=
SAN     ?= 0
TSAN    ?= 0
KEEP    ?= 0
CC      ?= cc

# Each compiler and each sanitizer builds into a folder of its own, so that
# builds never mix objects: build, build-san, build-tsan, build-clang, build-san-clang.
CC_SUFFIX := $(if $(findstring clang,$(notdir $(firstword $(CC)))),-clang,)

# FUZZ=1: the tree built by clang for libFuzzer harnesses (make fuzz sets it).
ifeq ($(FUZZ),1)
BUILD   := build-fuzz
CC      := clang
SANFLAGS = -fsanitize=address,undefined,fuzzer-no-link -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else ifeq ($(TSAN),1)
BUILD   ?= build-tsan$(CC_SUFFIX)
SANFLAGS = -fsanitize=thread -fno-omit-frame-pointer
else ifeq ($(SAN),1)
BUILD   ?= build-san$(CC_SUFFIX)
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD   ?= build$(CC_SUFFIX)
SANFLAGS =
endif

PKGS      := libpq libmicrohttpd jansson libcurl libcrypto libpcsclite libusb-1.0 pangocairo
# PKCS#11: p11-kit's pkcs11.h only; the module is loaded at run time.
P11_CFLAGS := $(shell pkg-config --cflags p11-kit-1 2>/dev/null)
EMU_PKGS  := umockdev-1.0 glib-2.0 gobject-2.0 cairo libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
EMU_CFLAGS := $(shell pkg-config --cflags $(EMU_PKGS) 2>/dev/null)
EMU_LIBS   := $(shell pkg-config --libs $(EMU_PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wformat=2 -Wno-format-nonliteral -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=gnu11 $(CFLAGS) $(WARN) $(SANFLAGS) -MMD -MP -Iinclude -Isrc $(PKG_CFLAGS) $(P11_CFLAGS)
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS)
LIBS    := $(PKG_LIBS) -lpthread -lm -ldl

# The service core and the drivers form one static library; the service,
# the CLI and the tests link it.
CORE_SRC := $(filter-out src/main.c,$(wildcard src/*.c)) $(wildcard drivers/*.c)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/web_assets.o
CORE_LIB := $(BUILD)/libcardd.a

# Emulators live in tools/emu/<name>/ and link nothing of the product.
EMU_DIRS := $(sort $(dir $(wildcard tools/emu/*/*.c)))
EMU_BINS := $(foreach d,$(EMU_DIRS),$(BUILD)/emu-$(notdir $(patsubst %/,%,$(d))))

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_LIB_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/unit/lib/*.c))
UNIT_LIB := $(BUILD)/tests/libunit.a
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
IT_LIB_SRC := $(wildcard tests/integration/lib/*.c)
IT_LIB_OBJ := $(IT_LIB_SRC:%.c=$(BUILD)/%.o)
IT_SRC := $(wildcard tests/integration/it_*.c)
IT_BINS := $(IT_SRC:tests/integration/%.c=$(BUILD)/tests/%)
BENCH_SRC := $(wildcard tests/bench/bench_*.c)
BENCH_BINS := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/tests/%)

BINS := $(BUILD)/cardd $(BUILD)/cardctl $(EMU_BINS)

FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_SECONDS ?= 20
FUZZ_JOBS ?= 2

.PHONY: all deps check unit integration valgrind bench demo install clean format format-check fuzz fuzz-build screenshots
all: $(BINS)

deps:
	@scripts/deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c $< -o $@

# The pages (web/) are compiled into the service: nothing else to install.
WEB_FILES := $(shell find web -type f ! -name '.*' 2>/dev/null)

$(BUILD)/gen/web_assets.c: $(WEB_FILES) scripts/embed-web.sh
	@mkdir -p $(dir $@)
	@echo "  EMBED   web/"
	@scripts/embed-web.sh web > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/web_assets.o: $(BUILD)/gen/web_assets.c
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c $< -o $@

$(CORE_LIB): $(CORE_OBJ)
	@rm -f $@
	@echo "  AR      $@"
	@$(AR) rcs $@ $^

$(BUILD)/cardd: $(BUILD)/src/main.o $(CORE_LIB)
	@echo "  LD      $@"
	@$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/cardctl: $(BUILD)/tools/cardctl.o $(CORE_LIB)
	@echo "  LD      $@"
	@$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# Emulators: own include path only, so no product header can leak in.
define emu_rule
$(BUILD)/emu-$(1): $(patsubst %.c,$(BUILD)/emuobj/%.o,$(wildcard tools/emu/$(1)/*.c))
	@echo "  LD      $$@"
	@$$(CC) $$(ALL_LDFLAGS) -o $$@ $$^ $$(EMU_LIBS) -lpthread -lm
endef
$(foreach d,$(EMU_DIRS),$(eval $(call emu_rule,$(notdir $(patsubst %/,%,$(d))))))

$(BUILD)/emuobj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $< (emulator)"
	@$(CC) -std=gnu11 $(CFLAGS) $(WARN) $(SANFLAGS) -MMD -MP -I$(dir $<) $(EMU_CFLAGS) -c $< -o $@

# One cmocka binary per module. A test may name link-time wraps in
# tests/unit/<name>.wrap (one symbol a line).
# Test helpers come from an archive after the product's library, so a
# test pulls in only what its wraps call for.
$(UNIT_LIB): $(UNIT_LIB_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	@$(AR) rcs $@ $^

$(BUILD)/tests/unit/%.o: CFLAGS += -Itests/unit/lib

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(CORE_LIB) $(UNIT_LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(ALL_LDFLAGS) -o $@ $< $(foreach s,$(shell cat tests/unit/$*.wrap 2>/dev/null),-Wl,--wrap=$(s)) $(CORE_LIB) $(UNIT_LIB) $(LIBS) -lcmocka

$(BUILD)/tests/it_%: $(BUILD)/tests/integration/it_%.o $(IT_LIB_OBJ) $(CORE_LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

$(BUILD)/tests/bench_%: $(BUILD)/tests/bench/bench_%.o $(IT_LIB_OBJ) $(CORE_LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/integration/%.o: CFLAGS += -Itests/integration/lib
$(BUILD)/tests/bench/%.o: CFLAGS += -Itests/integration/lib

tests-build: $(BINS) $(UNIT_BINS) $(IT_BINS) $(BENCH_BINS)

# libFuzzer harnesses: one per reader of outside bytes, linked with the core.
$(BUILD)/tests/fuzz/%.o: CFLAGS += -Itests/fuzz

$(BUILD)/fuzz/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(CORE_LIB)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(ALL_LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)

fuzz-build: $(FUZZ_BINS)

# Each harness for FUZZ_SECONDS (default 20), FUZZ_JOBS at a time (2), on its committed corpus; new
# inputs stay in build-fuzz/. A crash fails the target and keeps the input.
fuzz:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) BUILD=build-fuzz tests/fuzz/run.sh

check:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory tests-build
	@BUILD=$(BUILD) tests/run.sh all

unit:
	@$(MAKE) --no-print-directory tests-build
	@BUILD=$(BUILD) tests/run.sh unit

integration:
	@$(MAKE) --no-print-directory tests-build
	@BUILD=$(BUILD) tests/run.sh integration

# The pages' screenshots for the README, taken by their browser test.
screenshots:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory tests-build
	@BUILD=$(BUILD) ONLY=it_pages PAGES_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots tests/run.sh integration

valgrind:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory tests-build
	@BUILD=$(BUILD) VALGRIND=1 tests/run.sh unit

bench:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory tests-build
	@BUILD=$(BUILD) tests/run.sh bench

demo:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) KEEP=$(KEEP) scripts/demo.sh

install: $(BUILD)/cardd $(BUILD)/cardctl
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/cardd/sql $(DESTDIR)$(PREFIX)/share/cardd/reference
	install -m 0755 $(BUILD)/cardd $(BUILD)/cardctl $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 sql/*.sql $(DESTDIR)$(PREFIX)/share/cardd/sql/
	install -m 0644 etc/cardd.conf $(DESTDIR)$(PREFIX)/share/cardd/cardd.conf.example

# One code style for the tree (.clang-format); format-check fails on any drift.
FORMAT_SRC = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

format:
	@clang-format -i $(FORMAT_SRC)

format-check:
	@clang-format --dry-run --Werror $(FORMAT_SRC) && echo "format: clean"

clean:
	rm -rf build build-san build-tsan build-fuzz build-clang build-san-clang build-tsan-clang

.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
