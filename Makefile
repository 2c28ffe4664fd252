# postern - see README.md.
#
#   make          build bin/posternd and bin/postern (installs missing libraries)
#   make run      build, then run posternd in the foreground on its defaults
#   make test     AddressSanitizer + UBSan build, every unit and integration
#                 test; ends with "N passed, N failed"
#   make bench    release build, benchmarks against Postfix (tests/bench/)
#   make install  PREFIX=/usr/local DESTDIR=

PREFIX	?= /usr/local
DESTDIR	?=
CC	?= cc
PKGS	 = lmdb libcares openssl

WARN	 = -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes \
	   -Wshadow -Wcast-qual -Wformat=2
BASE	 = -std=c17 -D_GNU_SOURCE -g $(WARN) -Ismtp -Iqueue -Irunner \
	   -Ibounce -Ietrn -Itools
# pkg-config runs only after deps has installed what it reports on.
PKGCFLAGS = $$(pkg-config --cflags $(PKGS))
PKGLIBS	 = $$(pkg-config --libs $(PKGS)) -lcrypt -lpthread

SMTP_SRC   = smtp/xalloc.c smtp/sbuf.c smtp/strl.c smtp/log.c smtp/conf.c \
	     smtp/clock.c \
	     smtp/smtp_addr.c smtp/smtp_auth.c smtp/smtp_b64.c smtp/smtp_conn.c
QUEUE_SRC  = queue/queue_env.c queue/queue_key.c queue/queue_rec.c \
	     queue/queue_txn.c queue/queue_claim.c queue/queue_ops.c \
	     queue/queue_read.c
TOOLS_SRC  = tools/cmd_enqueue.c tools/cmd_queue.c tools/cmd_admin.c tools/cmd_check.c \
	     tools/cmd_util.c tools/cmd_passwd.c tools/cmd_run.c
RUNNER_SRC = runner/route.c runner/route_auth.c runner/route_dns.c runner/smtpc.c runner/sched.c \
	     runner/worker.c runner/runner_result.c runner/runner_mem.c runner/dlog.c
ETRN_SRC   = etrn/smtpd.c etrn/smtpd_session.c etrn/smtpd_param.c \
	     etrn/smtpd_check.c
LIB_SRC	   = $(SMTP_SRC) $(QUEUE_SRC) $(RUNNER_SRC) $(ETRN_SRC) $(TOOLS_SRC)
UNIT_TESTS = test_smtp_addr test_conf test_queue test_smtp_auth test_route test_runner \
	     test_log
UNIT_TESTS += test_smtpd
HDRS	   = $(wildcard */*.h tests/unit/*.h)

# Two builds side by side: release (bin/) and sanitizer (build/asan/bin/).
REL_CFLAGS  = $(BASE) -O2
ASAN_CFLAGS = $(BASE) -O1 -fno-omit-frame-pointer \
	      -fsanitize=address,undefined -fno-sanitize-recover=undefined

REL_OBJ	 = $(LIB_SRC:%.c=build/rel/%.o)
ASAN_OBJ = $(LIB_SRC:%.c=build/asan/%.o)

.PHONY: all deps test-deps run test bench install clean unit asan
all: deps bin/postern bin/posternd

deps:
	@sh tools/install-deps.sh build

test-deps:
	@sh tools/install-deps.sh test
	@sh tools/install-user.sh

build/rel/%.o: %.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(REL_CFLAGS) $(PKGCFLAGS) -c $< -o $@

build/asan/%.o: %.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) $(PKGCFLAGS) -c $< -o $@

bin/postern: $(REL_OBJ) build/rel/tools/postern.o
	@mkdir -p bin
	$(CC) $(REL_CFLAGS) -o $@ $^ $(PKGLIBS)

build/asan/bin/postern: $(ASAN_OBJ) build/asan/tools/postern.o
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(PKGLIBS)

bin/posternd: $(REL_OBJ) build/rel/tools/posternd.o
	@mkdir -p bin
	$(CC) $(REL_CFLAGS) -o $@ $^ $(PKGLIBS)

build/asan/bin/posternd: $(ASAN_OBJ) build/asan/tools/posternd.o
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(PKGLIBS)

build/asan/unit/%: tests/unit/%.c $(ASAN_OBJ)
	@mkdir -p $(@D)
	$(CC) $(ASAN_CFLAGS) $(PKGCFLAGS) -Itests/unit -o $@ $< $(ASAN_OBJ) \
	    $(PKGLIBS)

asan: build/asan/bin/postern build/asan/bin/posternd $(UNIT_TESTS:%=build/asan/unit/%)

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
