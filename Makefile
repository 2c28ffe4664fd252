# postern - see README.md.
#
#   make          build bin/posternd and bin/postern (installs missing libraries)
#   make run      build, then run posternd in the foreground on its defaults
#   make test     AddressSanitizer + UBSan build, every unit and integration
#                 test; ends with "N passed, N failed"
#   make bench    release build, benchmarks against Postfix (tests/bench/)
#   make install  PREFIX=/usr/local DESTDIR=
#
# A build prints one line per file it makes ("  CC  asan/queue/queue_env.o");
# V=1 prints the full commands instead.

.DEFAULT_GOAL := all

PREFIX	?= /usr/local
DESTDIR	?=
CC	?= cc
PKGS	 = lmdb libcares openssl libmicrohttpd

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
	     smtp/smtp_reply.c smtp/smtp_dot.c
QUEUE_SRC  = queue/queue_env.c queue/queue_key.c queue/queue_rec.c \
	     queue/queue_txn.c queue/queue_claim.c queue/queue_ops.c \
	     queue/queue_read.c queue/queue_report.c \
	     queue/queue_site.c
TOOLS_SRC  = tools/cmd_enqueue.c tools/cmd_queue.c tools/cmd_admin.c tools/cmd_check.c \
	     tools/cmd_util.c tools/cmd_passwd.c tools/cmd_run.c tools/cmd_pull.c \
	     tools/cmd_etrn.c \
	     tools/metrics.c tools/metrics_prom.c tools/metrics_page.c
RUNNER_SRC = runner/route.c runner/route_auth.c runner/route_dns.c runner/smtpc.c runner/smtpc_tls.c \
	     runner/smtpc_auth.c runner/smtpc_send.c runner/sched.c \
	     runner/worker.c runner/runner_result.c runner/runner_mem.c runner/dlog.c \
	     runner/runner_bounce.c \
	     runner/reverse.c
ETRN_SRC   = etrn/smtpd.c etrn/smtpd_session.c etrn/smtpd_param.c \
	     etrn/smtpd_check.c etrn/etrn.c etrn/etrn_policy.c \
	     etrn/atrn.c etrn/smtpd_pull.c
BOUNCE_SRC = bounce/dsn.c bounce/bounce_policy.c bounce/bounce_compose.c
LIB_SRC	   = $(SMTP_SRC) $(QUEUE_SRC) $(BOUNCE_SRC) $(RUNNER_SRC) $(ETRN_SRC) \
	     $(TOOLS_SRC)
UNIT_TESTS = test_smtp_addr test_conf test_queue_env test_queue_txn \
	     test_queue_claim test_queue_ops test_queue_read test_queue_report \
	     test_smtp_auth test_route test_runner test_log test_linefile \
	     test_bounce test_smtp_reply test_smtpd test_etrn_policy \
	     test_smtpc_auth test_metrics
# Programs the integration cases drive the code with (tests/integ/*.c).
PROBES	   = smtpc_probe route_probe
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

$(foreach b,rel asan,$(foreach l,$(LAYERS),$(eval \
build/$(b)/lib$(l).a: $$(patsubst %.c,build/$(b)/%.o,$$(call objs,$(l))))))

build/%.a:
	@mkdir -p $(@D)
	$(SAY) AR $(@:build/%=%)
	$(Q)rm -f $@ && ar rcs $@ $^

.PHONY: all deps test-deps run test bench install clean unit asan
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
    $(UNIT_TESTS:%=build/asan/unit/%) $(PROBES:%=build/asan/probe/%)
	@for f in build/asan/unit/test_*; do \
	    case " $(UNIT_TESTS) " in *" $${f##*/} "*) ;; *) rm -f "$$f" ;; esac; \
	done

# make run: as root on a fresh machine the unprivileged user is made first.
run: all
	@sh tools/install-user.sh
	./bin/posternd -f

test: test-deps
	@$(MAKE) --no-print-directory asan
	@sh tests/run.sh build/asan

bench: test-deps all
	@sh tests/bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin
	install -m 755 bin/postern $(DESTDIR)$(PREFIX)/bin/postern
	install -m 755 bin/posternd $(DESTDIR)$(PREFIX)/sbin/posternd
	@[ -n "$(DESTDIR)" ] || sh tools/install-user.sh
	ln -sf postern $(DESTDIR)$(PREFIX)/sbin/sendmail.postern

clean:
	rm -rf build bin
