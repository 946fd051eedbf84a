# qkd-ipsec top-level build. `make` builds everything, `make test` installs
# missing Debian packages, builds and runs every test, `make demo` runs the
# two-site key exchange. V=1 shows commands, WERROR=1 turns warnings into
# errors, SAN=1 builds with ASan+UBSan into build-san/.

ifeq ($(SAN),1)
BUILD  := build-san
BINDIR := build-san/bin
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT    := -O1 -g
else
BUILD  := build
BINDIR := bin
SANFLAGS :=
OPT    := -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
endif

CC      ?= cc
PKGS    := libmicrohttpd gnutls libcurl openssl jansson sqlite3 inih libpq
WARN    := -Wall -Wextra -Wshadow -Wformat=2 -Wvla -Wpointer-arith -Wcast-qual \
           -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
ifeq ($(WERROR),1)
WARN    += -Werror
endif
CFLAGS  := -std=c11 -D_GNU_SOURCE -pthread $(OPT) $(WARN) $(SANFLAGS) -I. \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS := -pthread $(SANFLAGS) $(if $(SAN),,-pie -Wl,-z,relro,-z,now)
LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TESTLIBS:= $(shell pkg-config --libs cmocka 2>/dev/null)

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-6s %s\n' $(1) $(2)
endif

COMMON_SRC := $(wildcard common/*.c)
KMSC_SRC   := kmsclient/kmsclient.c
SIM_SRC    := $(filter-out simulator/main.c,$(wildcard simulator/*.c))
KMSD_SRC   := $(filter-out kmsd/main.c,$(wildcard kmsd/*.c))
IKE_SRC    := $(filter-out ike/n3iwf_main.c ike/ue_main.c,$(wildcard ike/*.c))
objs = $(patsubst %.c,$(BUILD)/%.o,$(1))

LIBCOMMON := $(BUILD)/libcommon.a
LIBKMSC   := $(BUILD)/libkmsclient.a
LIBSIM    := $(BUILD)/libsim.a
LIBKMSD   := $(BUILD)/libkmsd.a
LIBIKE    := $(BUILD)/libike.a
BINS := $(BINDIR)/qkd-sim $(BINDIR)/kmsd $(BINDIR)/kmsclient $(BINDIR)/kme-bench \
	$(BINDIR)/esp-bench \
	$(if $(wildcard ike/n3iwf_main.c),$(BINDIR)/ike-n3iwf) \
	$(if $(wildcard ike/ue_main.c),$(BINDIR)/ike-ue)
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
TOOLS     := $(BUILD)/tools/ike-kdf $(BUILD)/tools/tcpsink $(BUILD)/tools/tunfwd $(BUILD)/tools/dp-pair \
	$(BUILD)/tools/delayrelay $(BUILD)/tools/wakelat

.PHONY: all deps test unit demo clean bench fuzz fresh-test man format lint
all: $(BINS) $(UNIT_BINS) $(TOOLS)

deps:
	@sh mk/deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIBCOMMON): $(call objs,$(COMMON_SRC))
$(LIBKMSC): $(call objs,$(KMSC_SRC))
$(LIBSIM): $(call objs,$(SIM_SRC))
$(LIBKMSD): $(call objs,$(KMSD_SRC))
$(LIBIKE): $(call objs,$(IKE_SRC))
$(BUILD)/%.a:
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BINDIR)/qkd-sim: $(BUILD)/simulator/main.o $(LIBSIM) $(LIBCOMMON)
$(BINDIR)/kmsd: $(BUILD)/kmsd/main.o $(LIBKMSD) $(LIBSIM) $(LIBKMSC) $(LIBCOMMON)
$(BINDIR)/ike-n3iwf: $(BUILD)/ike/n3iwf_main.o $(LIBIKE) $(LIBKMSC) $(LIBCOMMON)
$(BINDIR)/ike-ue: $(BUILD)/ike/ue_main.o $(LIBIKE) $(LIBKMSC) $(LIBCOMMON)
$(BINDIR)/kmsclient: $(BUILD)/kmsclient/main.o $(LIBKMSC) $(LIBCOMMON)
$(BINDIR)/kme-bench: $(call objs,$(filter-out bench/esp-bench.c,$(wildcard bench/*.c))) $(LIBCOMMON)
$(BINDIR)/esp-bench: $(BUILD)/bench/esp-bench.o $(LIBIKE) $(LIBCOMMON)
$(BUILD)/tools/ike-kdf: $(BUILD)/tests/tools/ike_kdf.o $(LIBIKE) $(LIBCOMMON)
$(BUILD)/tools/tcpsink: $(BUILD)/tests/tools/tcpsink.o
$(BUILD)/tools/delayrelay: $(BUILD)/tests/tools/delayrelay.o $(BUILD)/tests/tools/delayrelay_opt.o
$(BUILD)/tools/tunfwd: $(BUILD)/bench/dataplane/tunfwd.o
$(BUILD)/tools/wakelat: $(BUILD)/bench/dataplane/wakelat.o
$(BUILD)/tools/dp-pair: $(BUILD)/tests/tools/dp_pair.o $(LIBIKE) $(LIBCOMMON)
$(BINS) $(TOOLS):
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBIKE) $(LIBKMSD) $(LIBSIM) $(LIBKMSC) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(TESTLIBS)

# Man pages (make install installs them): man/PROG.8.head and
# man/PROG.conf.5.head + the options and settings that PROG --help-man
# writes from its config table (common/cfg.h), by mk/man.sh; kmsclient.1
# as written. `make man-check`: groff, man and lexgrog find nothing wrong.
MAN_PROGS := kmsd qkd-sim ike-n3iwf ike-ue
MANS := $(MAN_PROGS:%=build/man/%.8) $(MAN_PROGS:%=build/man/%.conf.5) \
	build/man/kmsclient.1
man: $(MANS)
build/man/%.8: man/%.8.head $(BINDIR)/% mk/man.sh
	@mkdir -p $(dir $@)
	$(call msg,MAN,$@)
	$(Q)sh mk/man.sh $* 8 $(BINDIR) $@
build/man/%.conf.5: man/%.conf.5.head $(BINDIR)/% mk/man.sh
	@mkdir -p $(dir $@)
	$(call msg,MAN,$@)
	$(Q)sh mk/man.sh $* 5 $(BINDIR) $@
build/man/kmsclient.1: man/kmsclient.1
	@mkdir -p $(dir $@)
	$(Q)cp $< $@
man-check: $(MANS)
	@sh mk/man-check.sh $(MANS)

test: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) BINDIR=$(BINDIR) sh tests/run.sh

unit: all
	@BUILD=$(BUILD) BINDIR=$(BINDIR) ONLY=unit sh tests/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@BINDIR=$(BINDIR) sh tests/demo.sh

bench: all
	@BINDIR=$(BINDIR) sh bench/run-kme-bench.sh

# `make test` (WERROR=1) in a pristine minimal Debian 12 root with only the
# committed tree: catches packages installed by hand (mk/fresh-test.sh).
fresh-test:
	@sh mk/fresh-test.sh

# libFuzzer targets (clang): NAME is fuzz/NAME_fuzz.c linked with FUZZ_NAME,
# seeded from fuzz/corpus/NAME/. `make fuzz` runs each FUZZ_TIME seconds and
# fails on any crash, leak, hang or sanitizer report (fuzz/README.md).
FUZZ_TARGETS   := ike etsi_req etsi_resp upstream cfg_kmsd cfg_sim cfg_ike nas esp
FUZZ_ike       := ike/ikev2.c ike/pld.c ike/pld_build.c ike/pld_sa.c ike/msg.c \
		  ike/crypto.c ike/crypto_ke.c ike/crypto_auth.c ike/proposal.c \
		  ike/ikecfg.c ike/ratelimit.c $(COMMON_SRC)
FUZZ_etsi_req  := fuzz/fuzz.c $(COMMON_SRC)
FUZZ_etsi_resp := fuzz/fuzz.c $(COMMON_SRC) kmsclient/kmsclient.c
FUZZ_upstream  := $(FUZZ_etsi_resp) kmsd/upstream.c kmsd/metrics.c
FUZZ_cfg_kmsd  := fuzz/fuzz.c $(COMMON_SRC) kmsd/config.c
FUZZ_cfg_sim   := fuzz/fuzz.c $(COMMON_SRC) simulator/config.c
FUZZ_cfg_ike   := fuzz/fuzz.c $(COMMON_SRC) ike/ikecfg.c ike/ratelimit.c
FUZZ_nas       := ike/nas.c ike/nas_sec.c ike/nas_5gsm.c ike/nas_tcp.c common/buf.c common/log.c
FUZZ_esp       := ike/esp.c common/buf.c common/log.c
FUZZ_TIME ?= 20
FUZZ_SAN   := address,undefined -fno-sanitize-recover=undefined
FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -DKMS_FUZZ -pthread -g -O1 -I. -Wall -Wextra \
	-Wno-unused-parameter -fsanitize=fuzzer-no-link,$(FUZZ_SAN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)clang $(FUZZ_FLAGS) -MMD -MP -c $< -o $@

define fuzz_target
build/fuzz/$(1): $(patsubst %.c,build/fuzz/obj/%.o,fuzz/$(1)_fuzz.c $(FUZZ_$(1)))
	$$(call msg,LD,$$@)
	$$(Q)clang -pthread -fsanitize=fuzzer,$(FUZZ_SAN) $$^ $(LIBS) -o $$@
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_target,$(t))))

fuzz: deps $(FUZZ_TARGETS:%=build/fuzz/%)
	@sh fuzz/run.sh $(FUZZ_TIME) $(FUZZ_TARGETS)

# `make format` rewrites every C source and header in place with clang-format
# (.clang-format says why each option is set); `make lint` changes nothing
# and fails on a file clang-format would change or on any cppcheck finding
# (CONTRIBUTING.md). Every tracked .c and .h is checked: nothing is vendored
# or generated. Outside a git checkout (a `git archive` copy), find lists them.
LINT_SRC = $(shell git ls-files '*.c' '*.h' 2>/dev/null || \
	find . -name '*.[ch]' ! -path './build*' ! -path './bin/*' | sed 's|^\./||')
# cppcheck, with a short list of checks:
#  --enable=warning,portability,performance: likely bugs, code whose meaning
#    changes across ABIs (printf types, shifts, sizes) and needless copies;
#    errors are always on. Not "style": it mostly restates our own house
#    rules (variable scope, const) and would flood the report.
#  --std=c11 -D_GNU_SOURCE -I.: the build's language, feature macro and
#    include root; defining the macros checks the one configuration we
#    build instead of every #ifdef combination (this is what keeps it fast).
#  --library=posix: what POSIX functions allocate, free and require.
#  --inline-suppr: a false positive is silenced where it stands, with a
#    `// cppcheck-suppress ID` comment saying why; none is silenced here.
#  --error-exitcode=1: any finding fails the target (and CI).
#  -j2: the machine has two cores.
CPPCHECK_FLAGS := --std=c11 -D_GNU_SOURCE -I. --library=posix \
	--enable=warning,portability,performance --inline-suppr \
	--error-exitcode=1 -j2 --quiet \
	--template='{file}:{line}: {severity} ({id}): {message}'

format: deps
	$(call msg,FORMAT,sources)
	$(Q)printf '%s\n' $(LINT_SRC) | xargs -P2 -n16 clang-format -i

lint: deps
	$(call msg,FORMAT,check)
	$(Q)printf '%s\n' $(LINT_SRC) | xargs -P2 -n16 clang-format --dry-run -Werror
	$(call msg,CPPCHECK,sources)
	$(Q)cppcheck $(CPPCHECK_FLAGS) $(filter %.c,$(LINT_SRC))

clean:
	rm -rf build build-san bin

# ---- Install, shared libkmsclient, man pages, packages (issue 11) --------
# GNU directory variables, lower case (BINDIR above is the build's output
# directory, not bindir). PREFIX=/usr puts the configs in /etc and the
# units in /lib/systemd/system, as Debian does; state always lives in
# /var/lib/qkd-ipsec (the units' StateDirectory=). DESTDIR stages.
PREFIX        ?= /usr/local
prefix        ?= $(PREFIX)
exec_prefix   ?= $(prefix)
bindir        ?= $(exec_prefix)/bin
sbindir       ?= $(exec_prefix)/sbin
libdir        ?= $(exec_prefix)/lib
includedir    ?= $(prefix)/include
datarootdir   ?= $(prefix)/share
datadir       ?= $(datarootdir)
mandir        ?= $(datarootdir)/man
sysconfdir    ?= $(if $(filter /usr,$(prefix)),/etc,$(prefix)/etc)
localstatedir ?= /var
unitdir       ?= $(if $(filter /usr,$(prefix)),/lib/systemd/system,$(prefix)/lib/systemd/system)
sysusersdir   ?= $(if $(filter /usr,$(prefix)),/usr/lib/sysusers.d,$(prefix)/lib/sysusers.d)
KMSC_VERSION  := 1.0.0
KMSC_SOLIB    := $(BUILD)/lib/libkmsclient.so.$(KMSC_VERSION)
INSTALL_VARS   = DESTDIR="$(DESTDIR)" prefix="$(prefix)" bindir="$(bindir)" \
	sbindir="$(sbindir)" libdir="$(libdir)" includedir="$(includedir)" \
	datadir="$(datadir)" mandir="$(mandir)" sysconfdir="$(sysconfdir)" \
	localstatedir="$(localstatedir)" unitdir="$(unitdir)" \
	sysusersdir="$(sysusersdir)" BINDIR="$(BINDIR)" BUILD="$(BUILD)" \
	KMSC_VERSION="$(KMSC_VERSION)"

.PHONY: lib install uninstall man-check pkg pkg-test
# libkmsclient.so.1: kmsclient.c and the parts of common/ it uses, built
# again as PIC; only kmsclient/libkmsclient.map's names are exported.
lib: $(KMSC_SOLIB)
$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -fPIC -MMD -MP -c $< -o $@
$(BUILD)/pic/libcommon.a: $(patsubst %.c,$(BUILD)/pic/%.o,$(COMMON_SRC))
$(KMSC_SOLIB): $(BUILD)/pic/kmsclient/kmsclient.o $(BUILD)/pic/libcommon.a \
		kmsclient/libkmsclient.map
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) -shared -pthread $(SANFLAGS) -Wl,-soname,libkmsclient.so.1 \
		-Wl,--version-script=kmsclient/libkmsclient.map -Wl,-z,relro,-z,now \
		-Wl,--no-undefined -o $@ $(filter %.o %.a,$^) -Wl,--as-needed $(LIBS)

# Only what it installs (not the tests: a package build needs no cmocka).
INSTALL_BINS := $(patsubst %,$(BINDIR)/%,qkd-sim kmsd ike-n3iwf ike-ue kmsclient)
install: $(INSTALL_BINS) lib man
	@$(INSTALL_VARS) sh mk/install.sh install
uninstall:
	@$(INSTALL_VARS) sh mk/install.sh uninstall

# Debian packages (debian/, dpkg-buildpackage) into build/deb/, and the
# test that installs them into a fresh Debian 12 root (mk/pkg-test.sh).
pkg:
	@sh mk/pkg-test.sh build
pkg-test:
	@sh mk/pkg-test.sh
# The units under a real systemd: the packages in a fresh Debian 12 root
# booted by systemd-nspawn (mk/systemd-test.sh). Not part of .ci/run.
.PHONY: systemd-test
systemd-test:
	@sh mk/systemd-test.sh

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# `make docker-test`: the two-site testbed as containers (docker/README.md):
# builds the images (podman or docker), runs a QKD NWu connection and a ping
# through the tunnel, checks keys at both kmsd, tears down. Takes minutes:
# not part of `make test` or .ci/run.
.PHONY: docker-test
docker-test:
	@sh docker/testbed.sh test
