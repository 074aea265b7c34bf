# qimg build. Two executables (DESIGN.md §7):
#   qimg       libc only: run, images, rmi, gc, export, system ... (the start-up path stays ~1 ms)
#   qimg-pull  everything that needs libcurl, libcrypto, jansson, libarchive: pull (+ unpack)
# `qimg pull` execs qimg-pull found beside itself (or in $(LIBEXECDIR)).

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec/qimg
MANDIR     ?= $(PREFIX)/share/man
DESTDIR    ?=

CC       ?= cc
OPT      ?= -O2 -g
BUILD    ?= build/release
OUT      ?= .
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

HEAVY_PKGS = libcurl libcrypto jansson libarchive libzstd
PKG_CFLAGS := $(shell pkg-config --cflags $(HEAVY_PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(HEAVY_PKGS) 2>/dev/null)

CPPFLAGS += -D_GNU_SOURCE -DQIMG_LIBEXECDIR='"$(LIBEXECDIR)"'
CFLAGS   += -std=c11 $(OPT) -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers -fstack-protector-strong
LDFLAGS  += -Wl,-O1 -Wl,--as-needed

# Sources that need a heavy library; everything else is linked into the light binary too.
HEAVY_SRCS = pull/registry.c pull/auth.c pull/manifest.c pull/pull.c pull/progress.c \
             overlay/unpack.c store/digest.c cmd/cmd_check.c cmd/cmd_pull.c
ALL_SRCS   = $(filter-out cmd/main.c tests/%,$(wildcard cmd/*.c pull/*.c store/*.c overlay/*.c run/*.c))
HEAVY_SRCS := $(filter $(HEAVY_SRCS),$(ALL_SRCS))
LIGHT_SRCS = $(filter-out $(HEAVY_SRCS),$(ALL_SRCS))

LIGHT_OBJS = $(LIGHT_SRCS:%.c=$(BUILD)/%.o)
HEAVY_OBJS = $(HEAVY_SRCS:%.c=$(BUILD)/%.o)

UNIT_SRCS  = $(wildcard tests/unit/test_*.c)
UNIT_BINS  = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps test check unit bench install uninstall clean demo lint fmt
all: $(OUT)/qimg $(OUT)/qimg-pull

$(BUILD)/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/heavy/%.o: %.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/cmd/main-light.o: cmd/main.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/cmd/main-heavy.o: cmd/main.c $(wildcard */*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DQIMG_HEAVY $(CFLAGS) -c -o $@ $<

$(OUT)/qimg: $(BUILD)/cmd/main-light.o $(LIGHT_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^

$(OUT)/qimg-pull: $(BUILD)/cmd/main-heavy.o $(LIGHT_OBJS) $(HEAVY_SRCS:%.c=$(BUILD)/heavy/%.o)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread

# Unit tests link the light objects, and the heavy ones for tests named test_h_*.
$(BUILD)/tests/test_h_%: tests/unit/test_h_%.c $(LIGHT_OBJS) $(HEAVY_SRCS:%.c=$(BUILD)/heavy/%.o)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(PKG_CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread
$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIGHT_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $^

unit: $(UNIT_BINS)

# Build and run dependencies on a fresh Debian 12 (apt-get).
DEB_DEPS = build-essential pkg-config libcurl4-openssl-dev libssl-dev libjansson-dev libarchive-dev \
           libzstd-dev uidmap fuse-overlayfs fuse3 docker-registry skopeo umoci busybox-static openssl \
           apache2-utils python3 python3-jwt python3-cryptography debootstrap procps iproute2 util-linux \
           passwd login ca-certificates curl hyperfine bubblewrap file
deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEB_DEPS)

test: all unit
	QIMG_BIN=$(abspath $(OUT)/qimg) QIMG_UNIT_DIR=$(abspath $(BUILD)/tests) tests/run.sh $(TESTS)

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
check:
	$(MAKE) BUILD=build/san OUT=build/san OPT="-O1 -g $(SAN_FLAGS)" LDFLAGS="$(SAN_FLAGS)" all unit
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	QIMG_BIN=$(abspath build/san/qimg) QIMG_UNIT_DIR=$(abspath build/san/tests) tests/run.sh $(TESTS)

demo: all
	tests/demo.sh

bench: all
	bench/startup
	bench/pull

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR)
	install -m 0755 $(OUT)/qimg $(DESTDIR)$(BINDIR)/qimg
	install -m 0755 $(OUT)/qimg-pull $(DESTDIR)$(LIBEXECDIR)/qimg-pull
	if [ -d docs/man ]; then install -d $(DESTDIR)$(MANDIR)/man1 && install -m 0644 docs/man/*.1 $(DESTDIR)$(MANDIR)/man1/; fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/qimg $(DESTDIR)$(LIBEXECDIR)/qimg-pull

lint:
	clang-format --dry-run --Werror $(ALL_SRCS) cmd/main.c
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --inline-suppr -D_GNU_SOURCE $(ALL_SRCS) cmd/main.c

fmt:
	clang-format -i $(ALL_SRCS) cmd/main.c $(wildcard */*.h)

clean:
	rm -rf build qimg qimg-pull
