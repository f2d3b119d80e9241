# Tributary build. `make` builds build/trib; `make test` installs what is missing, builds and
# runs the Criterion suite; `make demo` runs the walk-through; `make asan` runs the suite under
# ASan+UBSan; `make bench` prints benchmark figures; `make soak` loads a federation with churn and
# faults and checks nothing is lost (SOAK_SECONDS); `make install` puts trib in $(PREFIX)/bin;
# `make fresh-check` runs `make demo` and `make test` on a bare Debian 12 root (root, network).

PREFIX    ?= /usr/local
BUILD     ?= build
CC        ?= cc
PKGS      := libzmq libprotobuf-c lmdb libsodium libmicrohttpd libcurl jansson libfyaml yajl libcrypto
TESTPKGS  := criterion
# Debian packages that provide the pkg-config names above (same order), then the tools: the C
# compiler and C library headers, pkg-config and protoc-c for the build, and what the tests and the
# demo call (curl; ip and sysctl for the network-namespace test). A bare Debian 12 root with only
# `make` installed needs nothing else (`make fresh-check` proves it).
DEBS      := libzmq3-dev libprotobuf-c-dev liblmdb-dev libsodium-dev libmicrohttpd-dev \
             libcurl4-openssl-dev libssl-dev libjansson-dev libfyaml-dev libyajl-dev libcriterion-dev \
             gcc libc6-dev pkg-config protobuf-c-compiler curl iproute2 procps xxd openssl

OPT       ?= -O2 -g
SAN       ?=
CFLAGS    += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
             $(OPT) $(SAN) -I. -I$(BUILD) -MMD -MP
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
CRIT_LIBS  = $(shell pkg-config --libs criterion 2>/dev/null)

PROTO_C   := $(BUILD)/proto/tributary.pb-c.c
PROTO_H   := $(BUILD)/proto/tributary.pb-c.h
LIB_SRC   := $(wildcard storage/*.c gossip/*.c) $(filter-out node/main.c,$(wildcard node/*.c))
# The web UI (web/, DESIGN §15), embedded into the binary by web/embed.sh (xxd -i).
WEB_FILES := $(sort $(wildcard web/*.html web/*.js web/*.css web/*.png))
WEB_C     := $(BUILD)/web_assets.c
LIB_OBJ   := $(PROTO_C:%.c=%.o) $(LIB_SRC:%.c=$(BUILD)/%.o) $(WEB_C:%.c=%.o)
TEST_SRC  := $(wildcard tests/test_*.c)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_HELP := $(filter-out $(TEST_SRC),$(wildcard tests/*.c))
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all deps test unit asan valgrind demo bench soak install clean fresh-check
all: $(BUILD)/trib

# ---------------------------------------------------------------- dependencies
deps:
	@./deploy/deps.sh $(DEBS)

$(BUILD)/.deps-ok: deploy/deps.sh Makefile
	@./deploy/deps.sh $(DEBS)
	@mkdir -p $(BUILD) && touch $@

# ---------------------------------------------------------------- protobuf-c (one grouped rule)
$(PROTO_C) $(PROTO_H) &: proto/tributary.proto | $(BUILD)/.deps-ok
	@mkdir -p $(BUILD)/proto
	protoc-c --c_out=$(BUILD) proto/tributary.proto

# ---------------------------------------------------------------- web UI (embedded)
$(WEB_C): web/embed.sh $(WEB_FILES) | $(BUILD)/.deps-ok
	@mkdir -p $(BUILD)
	./web/embed.sh $@ $(WEB_FILES)

$(WEB_C:%.c=%.o): $(WEB_C)
	$(CC) $(CFLAGS) -c $< -o $@

# ---------------------------------------------------------------- objects
$(BUILD)/%.o: %.c $(PROTO_H) | $(BUILD)/.deps-ok
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/proto/tributary.pb-c.o: $(PROTO_C)
	$(CC) $(filter-out -Wextra -Wshadow,$(CFLAGS)) $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/libtrib.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/trib: $(BUILD)/node/main.o $(BUILD)/libtrib.a
	$(CC) $(CFLAGS) $^ $(PKG_LIBS) -o $@

$(TEST_BIN): $(BUILD)/tests/%: tests/%.c $(TEST_HELP:%.c=$(BUILD)/%.o) $(BUILD)/libtrib.a | $(BUILD)/trib
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(filter %.c %.o %.a,$^) $(PKG_LIBS) $(CRIT_LIBS) -o $@

# A wall clock a test steps (tests/shim/wallclock.c), preloaded into the agents that need it; never
# linked into a binary, and built without the sanitizers (the agent's ASan runtime stays first).
$(BUILD)/tests/wallclock.so: tests/shim/wallclock.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -Wall -Wextra -Werror -O1 -g -shared -fPIC $< -ldl -o $@
$(BUILD)/tests/test_chartered: $(BUILD)/tests/wallclock.so

$(BENCH_BIN): $(BUILD)/bench/%: bench/%.c $(BUILD)/libtrib.a | $(BUILD)/trib
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) $(filter %.c %.a,$^) $(PKG_LIBS) -o $@

# ---------------------------------------------------------------- targets
# The web UI tests (tests/ui/run.sh: installs chromium and the pinned playwright-core when missing)
# run after the Criterion binaries and count in the same closing line. UI_TESTS= leaves them out.
UI_TESTS  ?= ./tests/ui/run.sh
test: $(BUILD)/trib $(TEST_BIN)
	@TRIB=$(abspath $(BUILD)/trib) UI_TESTS=$(UI_TESTS) ./tests/run.sh $(TEST_BIN)

asan:
	$(MAKE) BUILD=build/asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" test

# The suite under valgrind, less the in-process 100-200 replica simulation (tens of minutes under
# valgrind; its code is covered by `make asan` and the other suites).
VG_TESTS := $(filter-out $(BUILD)/tests/test_replicate_sim,$(TEST_BIN))
valgrind: $(BUILD)/trib $(TEST_BIN)
	@VALGRIND=1 TRIB=$(abspath $(BUILD)/trib) ./tests/run.sh $(VG_TESTS)

demo: $(BUILD)/trib
	@./deploy/demo.sh $(abspath $(BUILD)/trib)

bench: $(BUILD)/trib $(BENCH_BIN) $(BUILD)/tests/test_replicate_sim
	@./bench/run.sh $(abspath $(BUILD))

# A federation under load with churn and faults for SOAK_SECONDS (bench/soak.c, bench/README.md
# "Soak"); not part of `make bench` or `make test`. Exits non-zero when an invariant breaks.
SOAK_SECONDS ?= 300
SOAK_NODES   ?= 5
soak: $(BUILD)/trib $(BUILD)/bench/soak
	@SOAK_SECONDS=$(SOAK_SECONDS) SOAK_NODES=$(SOAK_NODES) $(BUILD)/bench/soak $(abspath $(BUILD)/trib)

# The README's two commands on a bare Debian 12 root (debootstrap) with only make installed first;
# prints each step's time and status. Needs root and the network; not part of CI.
fresh-check:
	@./deploy/fresh-check.sh

install: $(BUILD)/trib
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BUILD)/trib $(DESTDIR)$(PREFIX)/bin/trib

clean:
	rm -rf build

# Dependency files of the objects (not build/fresh: fresh-check's Debian root has its own *.d dirs).
-include $(shell find $(BUILD) -path $(BUILD)/fresh -prune -o -name '*.d' -type f -print 2>/dev/null)
