# qimg build. Two executables (DESIGN.md §7) and a helper:
#   qimg       libc only: run, images, rmi, gc, export, system ... (the start-up path stays ~1 ms)
#   qimg-pull  everything that needs libcurl, libcrypto, jansson, libarchive: pull (+ unpack)
#   qimg-cdi   jansson + libyaml: the CDI resolver `qimg run --device NAME` execs (cdi/)
# `qimg pull` execs qimg-pull found beside itself (or in $(LIBEXECDIR)).

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec/qimg
MANDIR     ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
DESTDIR    ?=

CC       ?= cc
OPT      ?= -O2 -g
BUILD    ?= build/release
OUT      ?= .
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

HEAVY_PKGS = libcurl libcrypto jansson libarchive libzstd yaml-0.1
# ISA-L's igzip inflates 2-3x faster than zlib (DESIGN.md §7); used when present, zlib otherwise.
HAVE_ISAL := $(shell pkg-config --exists libisal 2>/dev/null && echo yes)
ifeq ($(HAVE_ISAL),yes)
HEAVY_PKGS += libisal
ISAL_CPPFLAGS = -DQIMG_HAVE_ISAL
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(HEAVY_PKGS) 2>/dev/null) $(ISAL_CPPFLAGS)
PKG_LIBS   := $(shell pkg-config --libs $(HEAVY_PKGS) 2>/dev/null)

CPPFLAGS += -D_GNU_SOURCE -DQIMG_LIBEXECDIR='"$(LIBEXECDIR)"'
CFLAGS   += -std=c11 $(OPT) -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers -fstack-protector-strong -fstack-clash-protection
LDFLAGS  += -Wl,-O1 -Wl,--as-needed

# Sources that need a heavy library; everything else is linked into the light binary too.
HEAVY_SRCS = pull/registry.c pull/tls.c pull/regauth.c pull/auth.c pull/manifest.c pull/pull.c pull/progress.c \
             overlay/unpack.c store/digest.c cmd/cmd_check.c cmd/cmd_pull.c \
             pull/load.c pull/save.c pull/login.c cmd/cmd_load.c cmd/cmd_save.c cmd/cmd_login.c \
             cdi/resolve.c cdi/yaml.c cmd/cmd_cdi.c
ALL_SRCS   = $(filter-out cmd/main.c cmd/main_cdi.c tests/%,$(wildcard lib/*.c userns/*.c cmd/*.c pull/*.c store/*.c overlay/*.c run/*.c cdi/*.c))
HEAVY_SRCS := $(filter $(HEAVY_SRCS),$(ALL_SRCS))
LIGHT_SRCS = $(filter-out $(HEAVY_SRCS),$(ALL_SRCS))

LIGHT_OBJS = $(LIGHT_SRCS:%.c=$(BUILD)/%.o)
HEAVY_OBJS = $(HEAVY_SRCS:%.c=$(BUILD)/%.o)

UNIT_SRCS  = $(wildcard tests/unit/test_*.c)
UNIT_BINS  = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps test check unit bench install uninstall clean demo lint fmt man valgrind-build
all: $(OUT)/qimg $(OUT)/qimg-pull $(OUT)/qimg-cdi

# The Slurm SPANK plugin (slurm/spank_qimg.c), when Slurm's header is there (Debian: libslurm-dev). It is loaded
# into slurmd/slurmstepd, so it is built with plain flags (no sanitizer runtime) and links libc only; it runs
# $(BINDIR)/qimg unless plugstack.conf says qimg=PATH.
SPANK_H   ?= /usr/include/slurm/spank.h
SPANK_SO   = $(BUILD)/spank_qimg.so
SLURM_PLUGINDIR ?= $(PREFIX)/lib/slurm
ifneq ($(wildcard $(SPANK_H)),)
all: $(SPANK_SO)
endif
$(SPANK_SO): slurm/spank_qimg.c Makefile
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE -DQIMG_BINDIR='"$(BINDIR)"' -std=c11 -O2 -g -Wall -Wextra -Werror -Wshadow \
		-Wno-missing-field-initializers -fstack-protector-strong -fPIC -shared -o $@ $<

$(BUILD)/%.o: %.c $(wildcard */*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/heavy/%.o: %.c $(wildcard */*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

$(BUILD)/cmd/main-light.o: cmd/main.c $(wildcard */*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/cmd/main-heavy.o: cmd/main.c $(wildcard */*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DQIMG_HEAVY $(CFLAGS) -c -o $@ $<

# qimg is linked statically: ld.so mapping and relocating libc.so costs ~0.6 ms of every `qimg run` here
# (bench/startup). And against musl when musl-gcc is there (Debian musl-tools, in `make deps`): glibc's start-up
# reads the CPU's cache geometry with cpuid, which traps in a VM: a glibc `int main(){}` takes 1.3 ms to run
# here, static or not, a musl one 0.2 ms. musl lacks only the new mount API's wrappers (run/mountapi.h) and the
# kernel headers (linked into $(BUILD)/kinc). Sanitizer and valgrind builds use glibc, dynamically
# (MUSL_CC= LIGHT_LDFLAGS=).
LIGHT_LDFLAGS ?= -static
ifeq ($(origin MUSL_CC),undefined)
MUSL_CC := $(shell command -v musl-gcc 2>/dev/null)
endif
ifneq ($(MUSL_CC),)
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
QIMG_OBJS = $(patsubst $(BUILD)/%,$(BUILD)/musl/%,$(BUILD)/cmd/main-light.o $(LIGHT_OBJS))
MUSL_COMPILE = $(MUSL_CC) -isystem $(BUILD)/kinc $(CPPFLAGS) $(CFLAGS) -c -o $@ $<
$(BUILD)/musl/%.o: %.c $(wildcard */*.h) Makefile $(BUILD)/kinc/.stamp
	@mkdir -p $(dir $@)
	$(MUSL_COMPILE)
$(BUILD)/musl/cmd/main-light.o: cmd/main.c $(wildcard */*.h) Makefile $(BUILD)/kinc/.stamp
	@mkdir -p $(dir $@)
	$(MUSL_COMPILE)
$(BUILD)/kinc/.stamp:
	@mkdir -p $(dir $@)
	ln -sfn /usr/include/linux $(dir $@)linux
	ln -sfn /usr/include/asm-generic $(dir $@)asm-generic
	ln -sfn /usr/include/$(MULTIARCH)/asm $(dir $@)asm
	touch $@
$(OUT)/qimg: $(QIMG_OBJS)
	$(MUSL_CC) $(CFLAGS) $(LDFLAGS) $(LIGHT_LDFLAGS) -o $@ $^
else
$(OUT)/qimg: $(BUILD)/cmd/main-light.o $(LIGHT_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) $(LIGHT_LDFLAGS) -o $@ $^
endif

$(OUT)/qimg-pull: $(BUILD)/cmd/main-heavy.o $(LIGHT_OBJS) $(HEAVY_SRCS:%.c=$(BUILD)/heavy/%.o)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread

# qimg-cdi: the CDI resolver alone, for `qimg run --device NAME` / `--gpus` (cdi/): jansson and libyaml only, so it
# does not pay qimg-pull's ~9 ms of loading libcurl, OpenSSL and libarchive.
CDI_HELPER_OBJS = $(BUILD)/cmd/main_cdi.o $(addprefix $(BUILD)/heavy/,cdi/resolve.o cdi/yaml.o cmd/cmd_cdi.o)
$(OUT)/qimg-cdi: $(CDI_HELPER_OBJS) $(LIGHT_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs jansson yaml-0.1 2>/dev/null)

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
           libzstd-dev libyaml-dev libisal-dev musl-tools uidmap fuse-overlayfs fuse3 docker-registry skopeo umoci busybox-static openssl \
           apache2-utils python3 python3-jwt python3-cryptography debootstrap procps iproute2 util-linux \
           passwd login ca-certificates curl hyperfine bubblewrap file zstd jq zsh groff-base man-db valgrind \
           tar libarchive-tools podman golang-go default-jdk-headless libcommons-compress-java slurm-wlm munge libslurm-dev
deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEB_DEPS)

test: all unit
	QIMG_BIN=$(abspath $(OUT)/qimg) QIMG_UNIT_DIR=$(abspath $(BUILD)/tests) QIMG_SPANK_PLUGIN=$(abspath $(SPANK_SO)) \
		tests/run.sh $(TESTS)

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer.
check:
	$(MAKE) BUILD=build/san OUT=build/san OPT="-O1 -g $(SAN_FLAGS)" LDFLAGS="$(SAN_FLAGS)" LIGHT_LDFLAGS= MUSL_CC= all unit
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	QIMG_BIN=$(abspath build/san/qimg) QIMG_UNIT_DIR=$(abspath build/san/tests) \
		QIMG_SPANK_PLUGIN=$(abspath build/san/spank_qimg.so) tests/run.sh $(TESTS)

# A dynamically linked, sanitizer-free build for valgrind (tests/e2e/security_valgrind.sh): memcheck cannot
# replace malloc in the static qimg. run/run.c finds <valgrind/valgrind.h> (package valgrind) and then clones PID 1
# without CLONE_VM when it runs under valgrind.
valgrind-build:
	$(MAKE) OUT=build/dyn BUILD=build/dyn LIGHT_LDFLAGS= MUSL_CC= build/dyn/qimg build/dyn/qimg-pull

demo: all
	tests/demo.sh

bench: all
	bench/startup
	bench/unpack
	bench/pull

install: all man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR)
	install -m 0755 $(OUT)/qimg $(DESTDIR)$(BINDIR)/qimg
	install -m 0755 $(OUT)/qimg-pull $(DESTDIR)$(LIBEXECDIR)/qimg-pull
	install -m 0755 $(OUT)/qimg-cdi $(DESTDIR)$(LIBEXECDIR)/qimg-cdi
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	install -m 0644 $(BUILD)/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 completions/qimg.bash $(DESTDIR)$(BASHCOMPDIR)/qimg
	install -m 0644 completions/_qimg $(DESTDIR)$(ZSHCOMPDIR)/_qimg
	if [ -f $(SPANK_SO) ]; then install -d $(DESTDIR)$(SLURM_PLUGINDIR) && \
		install -m 0755 $(SPANK_SO) $(DESTDIR)$(SLURM_PLUGINDIR)/spank_qimg.so; fi

# Man pages, one per command, made from each command's own --help text (docs/man/mkman.py) plus
# docs/man/qimg.extra (exit status, environment, files of qimg(1)); so they never disagree with --help.
man: all
	rm -rf $(BUILD)/man && python3 docs/man/mkman.py $(OUT)/qimg $(BUILD)/man

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/qimg $(DESTDIR)$(LIBEXECDIR)/qimg-pull $(DESTDIR)$(LIBEXECDIR)/qimg-cdi \
		$(DESTDIR)$(MANDIR)/man1/qimg.1 \
		$(DESTDIR)$(MANDIR)/man1/qimg-*.1 $(DESTDIR)$(BASHCOMPDIR)/qimg $(DESTDIR)$(ZSHCOMPDIR)/_qimg \
		$(DESTDIR)$(SLURM_PLUGINDIR)/spank_qimg.so

lint:
	clang-format --dry-run --Werror $(ALL_SRCS) cmd/main.c
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --inline-suppr -D_GNU_SOURCE $(ALL_SRCS) cmd/main.c

fmt:
	clang-format -i $(ALL_SRCS) cmd/main.c $(wildcard */*.h)

clean:
	rm -rf build qimg qimg-pull qimg-cdi

# ---------------------------------------------------------------------------------------------------- fuzzing
# libFuzzer targets tests/fuzz/fuzz_<name>.c (docs/SECURITY.md). `make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="ref
# manifest"]` builds them with clang (-fsanitize=fuzzer,address,undefined) and runs each for FUZZ_SECONDS on
# tests/fuzz/corpus/<name> + tests/fuzz/regress/<name>; new inputs go to build/fuzz/corpus/<name>, a crash to
# build/fuzz/crash-<name>-* (copy it into tests/fuzz/regress/<name>/ once fixed). `make fuzz-regress` builds the
# same targets with $(CC) and tests/fuzz/driver.c under ASan+UBSan (no clang needed) and runs every corpus and
# regress input once; tests/e2e/security_fuzz_regress.sh does that in `make test`.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_ALL      = $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_DIR      = build/fuzz
FUZZ_RDIR     = build/fuzz-regress
FUZZ_SAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_SUPPORT  = tests/fuzz/scratch.c
FUZZ_ENV      = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The tree's objects under build dir $(1), minus unpack.o: fuzz_unpack.c includes overlay/unpack.c itself.
fuzz_objs     = $(LIGHT_SRCS:%.c=$(1)/%.o) $(filter-out $(1)/heavy/overlay/unpack.o,$(HEAVY_SRCS:%.c=$(1)/heavy/%.o))

.PHONY: fuzz fuzz-build fuzz-regress fuzz-regress-build
fuzz-build:
	$(MAKE) CC=$(FUZZ_CC) BUILD=$(FUZZ_DIR) OPT="-O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link" \
		$(call fuzz_objs,$(FUZZ_DIR))
	$(MAKE) FUZZ_LINK_CC="$(FUZZ_CC)" FUZZ_LINK_FLAGS="-O1 -g $(FUZZ_SAN) -fsanitize=fuzzer" \
		$(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

fuzz-regress-build:
	$(MAKE) BUILD=$(FUZZ_RDIR) OPT="-O1 -g $(FUZZ_SAN)" $(call fuzz_objs,$(FUZZ_RDIR))
	$(MAKE) FUZZ_LINK_CC="$(CC)" FUZZ_LINK_FLAGS="-O1 -g $(FUZZ_SAN)" FUZZ_MAIN=tests/fuzz/driver.c \
		$(FUZZ_ALL:%=$(FUZZ_RDIR)/fuzz_%)

# Linking a target (called by the two rules above, once the objects exist).
FUZZ_DEPS = tests/fuzz/fuzz.h $(FUZZ_SUPPORT) $(FUZZ_MAIN) $(wildcard */*.c */*.h)
define fuzz_link
	@mkdir -p $(dir $@)
	$(FUZZ_LINK_CC) $(CPPFLAGS) -std=c11 $(FUZZ_LINK_FLAGS) -Wall -Wextra -Werror -Wshadow \
		-Wno-missing-field-initializers $(PKG_CFLAGS) -o $@ $< $(FUZZ_SUPPORT) $(FUZZ_MAIN) \
		$(dir $@)libqimg.a $(PKG_LIBS) -lpthread
endef
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libqimg.a $(FUZZ_DEPS)
	$(fuzz_link)
$(FUZZ_RDIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_RDIR)/libqimg.a $(FUZZ_DEPS)
	$(fuzz_link)

# The objects as an archive, so that a target links only what it uses.
$(FUZZ_DIR)/libqimg.a $(FUZZ_RDIR)/libqimg.a: $(wildcard */*.c */*.h)
	rm -f $@ && ar rcs $@ $(call fuzz_objs,$(patsubst %/,%,$(dir $@)))

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_DIR)/corpus/$$t; \
		echo "fuzz $$t: $(FUZZ_SECONDS)s"; \
		$(FUZZ_ENV) $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=30 -rss_limit_mb=2048 \
			-print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crash-$$t- $(FUZZ_DIR)/corpus/$$t \
			$$(ls -d tests/fuzz/corpus/$$t tests/fuzz/regress/$$t 2>/dev/null) >$(FUZZ_DIR)/$$t.log 2>&1 || \
			{ tail -n 60 $(FUZZ_DIR)/$$t.log; echo "fuzz $$t: FAILED (log: $(FUZZ_DIR)/$$t.log)"; exit 1; }; \
		grep -E '^stat::(number_of_executed_units|new_units_added)' $(FUZZ_DIR)/$$t.log | sed "s/^/  $$t /"; \
	done

fuzz-regress: fuzz-regress-build
	@st=0; for t in $(FUZZ_ALL); do \
		in=$$(ls -d tests/fuzz/corpus/$$t tests/fuzz/regress/$$t 2>/dev/null); \
		if [ -z "$$in" ]; then echo "FAIL fuzz-regress $$t: no inputs in tests/fuzz/corpus/$$t"; st=1; continue; fi; \
		if $(FUZZ_ENV) QIMG_FUZZ_UNPACK_FORK=1 $(FUZZ_RDIR)/fuzz_$$t $$in >$(FUZZ_RDIR)/$$t.log 2>&1; then \
			echo "ok fuzz-regress $$t: $$(tail -n 1 $(FUZZ_RDIR)/$$t.log)"; \
		else \
			echo "FAIL fuzz-regress $$t: $$(grep '^running ' $(FUZZ_RDIR)/$$t.log | tail -n 1)"; \
			tail -n 40 $(FUZZ_RDIR)/$$t.log | sed 's/^/#   /'; st=1; \
		fi; \
	done; exit $$st
