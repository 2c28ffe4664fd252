"""load.py - the soak's traffic: Postfix's smtp-source, paced (run.sh).

    load.py burst PORT SENTLOG TAG COUNT SESSIONS
    load.py paced PORT SENTLOG RATE SECONDS STOPFILE

smtp-source has no rate option, so `paced` runs it in one-second slices:
at each second k it starts, for every domain, smtp-source -s 1 -m N
(N = its share of RATE, fractions carried to the next second) and then
sleeps for the rest of the second. The sleep only shapes the load; no
result depends on it. A slice that overruns its second delays the next
one (the achieved rate is printed), it is not made up for.

Every recipient is unique: smtp-source -N prepends a sequence number
(1..N within one process) to the address given with -t, which is
"k<slice>.<part>x@<domain>", so "7k12.0x@ok.soak" is the 7th message of
slice 12's first process for ok.soak. With one session (-s 1) messages go
in order and the -c counter tells how many the server acknowledged (250
to the final dot), so SENTLOG gets one line per smtp-source process:

    SENT <tag> <domain> <asked> <acknowledged> <exit status>

and the recipients 1..acknowledged of that tag were acknowledged; if the
process failed, the one after them may or may not have been (the
connection may have broken after the dot). `burst` (the peak-rate probe)
runs SESSIONS sessions in parallel: its messages are acknowledged only
if smtp-source exits 0 (then all of them) - a failed burst leaves them
all "uncertain". It prints the elapsed seconds.
"""
import os
import subprocess
import sys
import time

# Share of the paced rate per domain, and fixed trickles (per second) to
# the held domains, so that each minute's ETRN and ATRN finds mail.
SHARES = [("ok.soak", 0.4), ("defer.soak", 0.3), ("reject.soak", 0.3)]
TRICKLE = [("etrn.soak", 0.1), ("atrn.soak", 0.1)]
PART_MAX = 40		# messages per smtp-source process in one slice
SLICE_TIMEOUT = 120	# a hung smtp-source is killed after this

BODY = 200		# octets of body (-l)


def source(port, tag, dom, count, sessions=1):
    args = ["smtp-source", "-c", "-N", "-s", str(sessions), "-m", str(count),
            "-l", str(BODY), "-M", "client.soak", "-f", "sender@src.soak",
            "-t", "k%sx@%s" % (tag, dom), "127.0.0.1:%d" % port]
    return subprocess.Popen(args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def finish(p, tag, dom, count, logf):
    try:
        out, err = p.communicate(timeout=SLICE_TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    nums = [x for x in out.decode("ascii", "replace").replace("\n", "\r")
            .split("\r") if x.strip().isdigit()]
    acked = int(nums[-1]) if nums else 0
    logf.write("SENT %s %s %d %d %d\n" % (tag, dom, count, acked,
                                          p.returncode))
    if p.returncode != 0:
        logf.write("# %s: %s\n" % (tag, err.decode("utf-8", "replace")
                                   .strip().replace("\n", " | ")[:300]))
    logf.flush()
    return acked


def burst(port, sentlog, tag, count, sessions):
    with open(sentlog, "a") as logf:
        t0 = time.monotonic()
        p = source(port, tag, "ok.soak", count, sessions)
        acked = finish(p, tag, "ok.soak", count, logf)
        el = time.monotonic() - t0
    # With several sessions the counter is not an ordered prefix.
    print("%.3f %d %d" % (el, acked, p.returncode))


def paced(port, sentlog, rate, seconds, stopfile):
    carry = {d: 0.0 for d, _ in SHARES + TRICKLE}
    want = dict(SHARES)
    want.update({d: r / rate for d, r in TRICKLE})
    t0 = time.monotonic()
    sent = 0
    k = 0
    with open(sentlog, "a") as logf:
        while k < seconds and not os.path.exists(stopfile):
            k += 1
            procs = []
            for d, _ in SHARES + TRICKLE:
                carry[d] += rate * want[d]
                n = int(carry[d])
                carry[d] -= n
                part = 0
                while n > 0:
                    m = min(n, PART_MAX)
                    tag = "%d.%d" % (k, part)
                    procs.append((source(port, tag, d, m), tag, d, m))
                    n -= m
                    part += 1
            for p, tag, d, m in procs:
                sent += finish(p, tag, d, m, logf)
            # Pace: the next slice starts at second k (if not late).
            rest = t0 + k - time.monotonic()
            if rest > 0:
                time.sleep(rest)
    el = time.monotonic() - t0
    print("paced: %d slices, %d acknowledged in %.1f s: %.1f/s (asked %.1f/s)"
          % (k, sent, el, sent / el if el else 0, rate))


if sys.argv[1] == "burst":
    burst(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]),
          int(sys.argv[6]))
else:
    paced(int(sys.argv[2]), sys.argv[3], float(sys.argv[4]),
          int(sys.argv[5]), sys.argv[6])
