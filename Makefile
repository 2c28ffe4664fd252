# postern - see README.md.
#
#   make          build bin/posternd and bin/postern (installs missing libraries)
#   make run      build, then run posternd in the foreground on its defaults
#   make test     AddressSanitizer + UBSan build, every unit and integration
#                 test; ends with "N passed, N failed"
#   make bench    release build, benchmarks against Postfix (tests/bench/);
#                 BENCH="tls deliver" runs only those sections
#   make fuzz     libFuzzer targets (tests/fuzz/), FUZZ_SECONDS each;
#                 make fuzz-merge keeps what they found (README "Fuzzing")
#   make soak     release build, SOAK_MINUTES (30) of mixed traffic; memory
#                 and fd slopes, every recipient accounted for (tests/soak/)
#   make install  PREFIX=/usr/local DESTDIR= (binaries, man pages, sample
#                 configuration, systemd unit, sendmail link; README)
#
# A build prints one line per file it makes ("  CC  asan/queue/queue_env.o");
# V=1 prints the full commands instead.

.DEFAULT_GOAL := all

PREFIX	?= /usr/local
DESTDIR	?=
# Installed paths: with PREFIX=/usr the FHS ones (/etc, /var), else all
# under PREFIX.
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
LOCALSTATEDIR ?= $(if $(filter /usr,$(PREFIX)),/var,$(PREFIX)/var)
MANDIR	?= $(PREFIX)/share/man
UNITDIR	?= $(PREFIX)/lib/systemd/system
CONFFILE = $(SYSCONFDIR)/postern/postern.conf
QUEUEDIR = $(LOCALSTATEDIR)/spool/postern
INST_SED = -e 's|@SBINDIR@|$(PREFIX)/sbin|g' -e 's|@CONFFILE@|$(CONFFILE)|g' \
	   -e 's|@QUEUEDIR@|$(QUEUEDIR)|g'
CC	?= cc
PKGS	 = lmdb libcares openssl libmicrohttpd libidn2 libcurl

WARN	 = -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes \
	   -Wshadow -Wcast-qual -Wformat=2
BASE	 = -std=c17 -D_GNU_SOURCE -g $(WARN)
# The layers (design.md): queue, smtp -> runner, bounce -> etrn -> tools.
# A folder is compiled with its own include path and those of the folders
# below it only, so an upward #include does not compile; each folder is a
# static archive, linked in the order of the arrows.
INC_queue  = -Iqueue
INC_smtp   = -Ismtp
INC_bounce = -Ibounce -Iqueue -Ismtp
INC_runner = -Irunner -Ibounce -Iqueue -Ismtp
INC_etrn   = -Ietrn -Irunner -Ibounce -Iqueue -Ismtp
INC_tools  = -Itools -Ietrn -Irunner -Ibounce -Iqueue -Ismtp
INC_tests  = $(INC_tools) -Itests/unit
LAYERS	   = tools etrn runner bounce smtp queue
# pkg-config runs only after deps has installed what it reports on.
PKGCFLAGS = $$(pkg-config --cflags $(PKGS))
PKGLIBS	 = $$(pkg-config --libs $(PKGS)) -lcrypt -lpthread

SMTP_SRC   = smtp/xalloc.c smtp/sbuf.c smtp/strl.c smtp/log.c smtp/conf.c \
	     smtp/clock.c smtp/linefile.c smtp/counters.c \
	     smtp/smtp_addr.c smtp/smtp_auth.c smtp/smtp_b64.c smtp/smtp_conn.c \
	     smtp/smtp_reply.c smtp/smtp_dot.c smtp/smtp_idn.c
QUEUE_SRC  = queue/queue_env.c queue/queue_key.c queue/queue_rec.c \
	     queue/queue_txn.c queue/queue_claim.c queue/queue_ops.c \
	     queue/queue_read.c queue/queue_report.c \
	     queue/queue_site.c queue/queue_sts.c
TOOLS_SRC  = tools/cmd_enqueue.c tools/cmd_queue.c tools/cmd_admin.c tools/cmd_check.c \
	     tools/cmd_util.c tools/cmd_passwd.c tools/cmd_run.c tools/cmd_pull.c \
	     tools/cmd_etrn.c tools/inject.c \
	     tools/metrics.c tools/metrics_prom.c tools/metrics_page.c
RUNNER_SRC = runner/route.c runner/route_auth.c runner/route_dns.c runner/smtpc.c runner/smtpc_tls.c \
	     runner/smtpc_auth.c runner/smtpc_send.c runner/sched.c \
	     runner/worker.c runner/runner_result.c runner/runner_mem.c runner/dlog.c \
	     runner/runner_bounce.c \
	     runner/reverse.c runner/site.c runner/notify.c \
	     runner/route_tlsa.c runner/smtpc_dane.c runner/route_ares.c \
	     runner/route_sts.c runner/route_sts_parse.c runner/route_sts_fetch.c
ETRN_SRC   = etrn/smtpd.c etrn/smtpd_session.c etrn/smtpd_param.c \
	     etrn/smtpd_check.c etrn/etrn.c etrn/etrn_policy.c \
	     etrn/atrn.c etrn/smtpd_pull.c etrn/smtpd_local.c
BOUNCE_SRC = bounce/dsn.c bounce/bounce_policy.c bounce/bounce_compose.c
LIB_SRC	   = $(SMTP_SRC) $(QUEUE_SRC) $(BOUNCE_SRC) $(RUNNER_SRC) $(ETRN_SRC) \
	     $(TOOLS_SRC)
UNIT_TESTS = test_smtp_addr test_conf test_queue_env test_queue_txn \
	     test_queue_claim test_queue_ops test_queue_read test_queue_report \
	     test_smtp_auth test_route test_runner test_log test_linefile \
	     test_bounce test_smtp_reply test_smtpd test_etrn_policy \
	     test_smtpc_auth test_metrics test_route_tlsa test_smtp_idn test_route_sts
# Programs the integration cases drive the code with (tests/integ/*.c).
PROBES	   = smtpc_probe route_probe
# The fuzz targets (tests/fuzz/fuzz_TARGET.c; see "Fuzzing" below).
FUZZ_ALL   = smtpd_session smtpd_param etrn_args addr reply conf routes \
	     users policy known queue_rec header_scan dsn sasl tlsa sts
HDRS	   = $(wildcard */*.h tests/unit/*.h)

# Two builds side by side: release (bin/) and sanitizer (build/asan/bin/).
REL_CFLAGS  = $(BASE) -O2
ASAN_CFLAGS = $(BASE) -O1 -fno-omit-frame-pointer \
	      -fsanitize=address,undefined -fno-sanitize-recover=undefined

# V=1: show the commands; else one short line per file made.
V	?= 0
ifeq ($(V),1)
Q	 =
SAY	 = @:
else
Q	 = @
SAY	 = @printf '  %-4s %s\n'
endif

# The include path of the folder a source file is in.
INC	 = $(INC_$(firstword $(subst /, ,$<)))

# build/B/libL.a holds folder L's objects; LIBS(B) lists them in link order.
LIBS	 = $(foreach l,$(LAYERS),build/$(1)/lib$(l).a)
REL_LIBS  = $(call LIBS,rel)
ASAN_LIBS = $(call LIBS,asan)
objs	 = $(filter $(1)/%,$(LIB_SRC))

$(foreach b,rel asan fuzz,$(foreach l,$(LAYERS),$(eval \
build/$(b)/lib$(l).a: $$(patsubst %.c,build/$(b)/%.o,$$(call objs,$(l))))))

build/%.a:
	@mkdir -p $(@D)
	$(SAY) AR $(@:build/%=%)
	$(Q)rm -f $@ && ar rcs $@ $^

.PHONY: all deps test-deps run test bench soak install clean unit asan
all: deps bin/postern bin/posternd

deps:
	@sh tools/install-deps.sh build

test-deps:
	@sh tools/install-deps.sh test
	@sh tools/install-user.sh

build/rel/%.o: %.c $(HDRS)
	@mkdir -p $(@D)
	$(SAY) CC $(@:build/%=%)
	$(Q)$(CC) $(REL_CFLAGS) $(INC) $(PKGCFLAGS) -c $< -o $@

build/asan/%.o: %.c $(HDRS)
	@mkdir -p $(@D)
	$(SAY) CC $(@:build/%=%)
	$(Q)$(CC) $(ASAN_CFLAGS) $(INC) $(PKGCFLAGS) -c $< -o $@

bin/postern: build/rel/tools/postern.o $(REL_LIBS)
	@mkdir -p bin
	$(SAY) LD $@
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(PKGLIBS)

build/asan/bin/postern: build/asan/tools/postern.o $(ASAN_LIBS)
	@mkdir -p $(@D)
	$(SAY) LD $(@:build/%=%)
	$(Q)$(CC) $(ASAN_CFLAGS) -o $@ $^ $(PKGLIBS)

bin/posternd: build/rel/tools/posternd.o $(REL_LIBS)
	@mkdir -p bin
	$(SAY) LD $@
	$(Q)$(CC) $(REL_CFLAGS) -o $@ $^ $(PKGLIBS)

build/asan/bin/posternd: build/asan/tools/posternd.o $(ASAN_LIBS)
	@mkdir -p $(@D)
	$(SAY) LD $(@:build/%=%)
	$(Q)$(CC) $(ASAN_CFLAGS) -o $@ $^ $(PKGLIBS)

build/asan/unit/%: tests/unit/%.c $(ASAN_LIBS) $(HDRS)
	@mkdir -p $(@D)
	$(SAY) CCLD $(@:build/%=%)
	$(Q)$(CC) $(ASAN_CFLAGS) $(INC_tests) $(PKGCFLAGS) -o $@ $< \
	    $(ASAN_LIBS) $(PKGLIBS)

build/asan/probe/%: tests/integ/%.c $(ASAN_LIBS) $(HDRS)
	@mkdir -p $(@D)
	$(SAY) CCLD $(@:build/%=%)
	$(Q)$(CC) $(ASAN_CFLAGS) $(INC_tests) $(PKGCFLAGS) -o $@ $< \
	    $(ASAN_LIBS) $(PKGLIBS)

# A unit test binary no longer in UNIT_TESTS goes: tests/run.sh runs them all.
asan: build/asan/bin/postern build/asan/bin/posternd \
    $(UNIT_TESTS:%=build/asan/unit/%) $(PROBES:%=build/asan/probe/%) \
    $(FUZZ_ALL:%=build/asan/fuzz/replay_%)
	@for f in build/asan/unit/test_*; do \
	    case " $(UNIT_TESTS) " in *" $${f##*/} "*) ;; *) rm -f "$$f" ;; esac; \
	done

# Fuzzing (tests/fuzz/, README "Fuzzing"): each target is built twice.
# With clang and libFuzzer into build/fuzz/ (its own objects: make fuzz),
# and with gcc, ASan and UBSan into build/asan/fuzz/replay_TARGET, which
# replays the corpus files (make test: 850-fuzz-replay.sh).
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_SECONDS ?= 60
FUZZ_JOBS  ?= 1
FUZZ_PARALLEL ?= 1
FUZZ_CC	   ?= clang-14
FUZZ_SAN   = -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS = -std=c17 -D_GNU_SOURCE -g $(WARN) -Wno-error -O1 \
	      -fno-omit-frame-pointer -gline-tables-only $(FUZZ_SAN)
FUZZ_LIBS  = $(call LIBS,fuzz)
FUZZ_UTIL  = tests/fuzz/fuzz_util.c
INC_fuzz   = $(INC_tests) -Itests/fuzz

build/fuzz/%.o: %.c $(HDRS)
	@mkdir -p $(@D)
	$(SAY) CC $(@:build/%=%)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(INC) \
	    $(PKGCFLAGS) -c $< -o $@

build/fuzz/bin/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_UTIL) tests/fuzz/fuzz.h \
    $(FUZZ_LIBS) $(HDRS)
	@mkdir -p $(@D)
	$(SAY) CCLD $(@:build/%=%)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(INC_fuzz) \
	    $(PKGCFLAGS) -o $@ $< $(FUZZ_UTIL) $(FUZZ_LIBS) $(PKGLIBS)

build/asan/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c \
    $(FUZZ_UTIL) tests/fuzz/fuzz.h $(ASAN_LIBS) $(HDRS)
	@mkdir -p $(@D)
	$(SAY) CCLD $(@:build/%=%)
	$(Q)$(CC) $(ASAN_CFLAGS) $(INC_fuzz) $(PKGCFLAGS) -o $@ $< \
	    tests/fuzz/replay_main.c $(FUZZ_UTIL) $(ASAN_LIBS) $(PKGLIBS)

.PHONY: fuzz fuzz-build fuzz-merge
fuzz-build: test-deps
	@$(MAKE) --no-print-directory \
	    $(FUZZ_TARGETS:%=build/fuzz/bin/fuzz_%)

# make fuzz FUZZ_SECONDS=N FUZZ_TARGETS="a b" FUZZ_JOBS=J FUZZ_PARALLEL=P:
# each target N seconds (J processes each, P targets at a time) over a
# working copy of its corpus (build/fuzz/work/); stats in
# build/fuzz/stats.txt, crashes in build/fuzz/crash/TARGET/.
fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) \
	    FUZZ_PARALLEL=$(FUZZ_PARALLEL) \
	    sh tests/fuzz/run.sh run $(FUZZ_TARGETS)

# make fuzz-merge: what the runs found, minimised (-merge=1) into
# tests/fuzz/corpus/TARGET/.
fuzz-merge: fuzz-build
	@sh tests/fuzz/run.sh merge $(FUZZ_TARGETS)

# make run: as root on a fresh machine the unprivileged user is made first.
run: all
	@sh tools/install-user.sh
	./bin/posternd -f

test: test-deps
	@$(MAKE) --no-print-directory asan
	@sh tests/run.sh build/asan

# BENCH: the sections to run (run.sh's names: enqueue flush receive deliver
# bounce etrn inject metrics tls); empty runs them all.
BENCH	?=
bench: test-deps all
	@BENCH_ONLY="$(BENCH)" sh tests/bench/run.sh

# Not part of test: it takes SOAK_MINUTES (default 30) and then some.
soak: test-deps all
	@SOAK_MINUTES=$(or $(SOAK_MINUTES),30) sh tests/soak/run.sh

# make install: the tree README's "Installing" lists. The installed mains
# are compiled again with the installed configuration file as their
# default (a build tree's is etc/postern.conf, relative); the libraries
# are the release build's. An existing postern.conf is never touched (the
# sample beside it is), nor a sendmail that is not ours (a system MTA's).
install: all
	@mkdir -p build/inst
	$(SAY) CC inst/postern.o
	$(Q)$(CC) $(REL_CFLAGS) $(INC_tools) $(PKGCFLAGS) \
	    -DCONF_DEFAULT_FILE='"$(CONFFILE)"' -c tools/postern.c \
	    -o build/inst/postern.o
	$(SAY) CC inst/posternd.o
	$(Q)$(CC) $(REL_CFLAGS) $(INC_tools) $(PKGCFLAGS) \
	    -DCONF_DEFAULT_FILE='"$(CONFFILE)"' -c tools/posternd.c \
	    -o build/inst/posternd.o
	$(Q)$(CC) $(REL_CFLAGS) -o build/inst/postern build/inst/postern.o \
	    $(REL_LIBS) $(PKGLIBS)
	$(Q)$(CC) $(REL_CFLAGS) -o build/inst/posternd build/inst/posternd.o \
	    $(REL_LIBS) $(PKGLIBS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSCONFDIR)/postern \
	    $(DESTDIR)$(UNITDIR)
	install -m 755 build/inst/postern $(DESTDIR)$(PREFIX)/bin/postern
	install -m 755 build/inst/posternd $(DESTDIR)$(PREFIX)/sbin/posternd
	install -m 644 man/postern.1 $(DESTDIR)$(MANDIR)/man1/postern.1
	install -m 644 man/postern.conf.5 $(DESTDIR)$(MANDIR)/man5/postern.conf.5
	install -m 644 man/posternd.8 $(DESTDIR)$(MANDIR)/man8/posternd.8
	sed $(INST_SED) tools/postern.conf.sample.in \
	    >$(DESTDIR)$(SYSCONFDIR)/postern/postern.conf.sample
	[ -e $(DESTDIR)$(CONFFILE) ] || install -m 644 \
	    $(DESTDIR)$(SYSCONFDIR)/postern/postern.conf.sample \
	    $(DESTDIR)$(CONFFILE)
	sed $(INST_SED) tools/posternd.service.in \
	    >$(DESTDIR)$(UNITDIR)/posternd.service
	ln -sf ../bin/postern $(DESTDIR)$(PREFIX)/sbin/postern-sendmail
	@s=$(DESTDIR)$(PREFIX)/sbin/sendmail; \
	if [ ! -e "$$s" ] && [ ! -L "$$s" ] || \
	    [ "$$(readlink "$$s")" = ../bin/postern ]; then \
		echo "ln -sf ../bin/postern $$s"; ln -sf ../bin/postern "$$s"; \
	else \
		echo "install: $$s exists (another MTA's): left alone;" \
		    "postern-sendmail beside it is postern's"; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" -eq 0 ]; then \
		sh tools/install-user.sh && \
		install -d -o postern -g postern -m 700 $(QUEUEDIR); \
	else \
		install -d -m 700 $(DESTDIR)$(QUEUEDIR); \
	fi

clean:
	rm -rf build bin
