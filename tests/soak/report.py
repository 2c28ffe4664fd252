"""report.py - the soak's verdicts (run.sh): memory and fd slopes, and
the account of every recipient.

    report.py DIR WARMUP_SECONDS

Reads what run.sh and its helpers left in DIR and prints two tables; exits
1 on any violation (growth over the tolerance, or a recipient not
accounted for), else 0.

1. Growth. From samples.csv (monitor.py, one row per posternd process
every 10 s), per role: at each sample time the mean VmRSS, RssAnon and fd
count over the processes of that role alive then (workers come and go:
the mean follows a typical one, not how many there were), then the
least-squares slope of each over the samples after WARMUP_SECONDS, per
minute. For fds the series leaves out the established TCP connections
(the sessions in flight, when samples.csv has them: its fds_est column)
and is then each minute's lowest value (the floor): smtpd's count swings
by ten with the sessions open at the moment of the sample, which is no
leak, while a leaked descriptor (a socket left in CLOSE_WAIT, a file)
lifts the floor for good. Tolerance, per 10 minutes of growth: memory at most the larger of
256 KiB and 1 % of its mean (allocator noise is below that; a leak of a
few hundred bytes a message at tens of messages a second is far above
it), fds at most the larger of 1 and 2 % of the mean (a descriptor
leaked per thousand sessions shows within minutes). A shrinking series
passes.

The verdict is on RssAnon, the process's own heap and stacks, and on the
fds. VmRSS, printed beside it, adds file-backed pages: the shared
libraries and the LMDB map (the queue is a file mapped read-only), whose
pages count as a process first touches them, so VmRSS climbs for a
while in a process that leaks nothing, up to the size of those files
(the data.mdb sizes are printed: a queue file that keeps growing would be
the leak to look at). VmRSS over the tolerance while RssAnon is within it
is printed as "ok (file pages +N KiB/10min)".

A heap over the tolerance that rose in the first half of the window and
stayed flat through the second half is a high-water mark, not a leak
(plateau() says exactly what counts), and is printed as "ok (heap rose
+N KiB until minute M, then flat for F min)", N from the window's first
sample. This rule came after the first 30-minute run on the final code:
the scheduler's heap rose 792 KiB in one 10-s sample at minute 11, when a
stall left 302 recipients in flight at once (8 to 30 otherwise), and was
flat for the 22 minutes after; the plain slope called that 307 KiB/10min
of growth.

2. Accounting. Each recipient the server acknowledged (sent.log: for each
smtp-source process the first `acknowledged` of its numbered addresses)
is one of:
  delivered  seen at a sink (dumps/ok, dumps/etrn, dumps/atrn: smtp-sink's
             X-Rcpt-Args; defer.log, reject.log: ACCEPT), no DSN, not
             live in the final queue (final.json);
  deferred   live in the final queue (deferred, queued, held, active),
             not seen at a sink, no DSN;
  failed     exactly one failure DSN names it (Final-Recipient, Action:
             failed), not delivered, not live; the DSN at the DSN sink
             (dumps/dsn) or still queued for it (live-dsn/, run.sh saved
             each queued DSN's text).
Violations: lost (none of the three), failed with two or more DSNs, a DSN
for a recipient that was also delivered, a failure in the log
(status=bounced or expired) without a DSN, a DSN for an address no sink
refused (reject.log REJECT), an acknowledged recipient both delivered
and live. Counted but no violation: delivered more than once (delivery
is at-least-once), and addresses at a sink the client did not see
acknowledged (the "uncertain" message of a failed smtp-source: the
server may have taken it as the connection broke).
"""
import json
import os
import re
import sys

d = sys.argv[1]
warmup = float(sys.argv[2])
bad = []


def path(n):
    return os.path.join(d, n)


def lsq(pts):
    """Least-squares slope of [(x, y)], or None with fewer than 3 points."""
    n = len(pts)
    if n < 3:
        return None
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in pts) / sxx


def plateau(ser, tol):
    """A heap series [(minute, KiB)] whose slope is over tol (KiB per 10
    min) may be one step up that then stopped: a high-water mark (a burst
    of mail in flight grows a table or the allocator's arenas, and freed
    memory is kept for reuse), not a leak. It is called a step only when
    the second half of the window is flat: its own slope within tol, and
    its highest value within tol of the first half's highest. Then
    (rise, minute of the rise, minutes flat); else None (growth that goes
    on, or a rise late in the window, stays a leak)."""
    if len(ser) < 6:
        return None
    mid = (ser[0][0] + ser[-1][0]) / 2.0
    first = [p for p in ser if p[0] < mid]
    second = [p for p in ser if p[0] >= mid]
    s2 = lsq(second)
    if s2 is None or s2 * 10 > tol:
        return None
    m1 = max(y for _, y in first)
    if max(y for _, y in second) > m1 + tol:
        return None
    at = next(x for x, y in first if y >= m1)
    return (m1 - ser[0][1], at, ser[-1][0] - at)


def growth():
    series = {}		# role -> t -> [rss, anon, fds, n]
    try:
        f = open(path("samples.csv"))
    except OSError:
        bad.append("no samples.csv")
        return
    with f:
        for l in f:
            p = l.strip().split(",")
            if len(p) not in (7, 8) or p[0] == "t":
                continue
            t, role = float(p[0]), p[3]
            a = series.setdefault(role, {}).setdefault(t, [0, 0, 0, 0])
            a[0] += int(p[4])
            a[1] += int(p[5])
            # Without the sessions in flight, when they were counted.
            a[2] += int(p[6]) - (int(p[7]) if len(p) == 8 else 0)
            a[3] += 1
    print("== growth after the first %.0f s (slope per minute; tolerance "
          "per 10 min: memory max(256 KiB, 1%% of mean), fds (the floor of "
          "each minute) max(1, 2%% of mean); verdict on anon and fds)"
          % warmup)
    print("%-14s %5s %5s %9s %9s %9s %9s %7s %8s  %s" % (
        "role", "procs", "pts", "rss_mean", "rss/min", "anon_mean",
        "anon/min", "fds", "fds/min", "verdict"))
    for role in sorted(series):
        pts = sorted(series[role].items())
        late = [(t, a) for t, a in pts if t >= warmup]
        nproc = max(a[3] for _, a in pts)
        if len(late) < 3:
            print("%-14s %5d %5d %s" % (role, nproc, len(late),
                                        "n/a (too few samples)"))
            continue

        def ser(i):
            return [(t / 60.0, a[i] / a[3]) for t, a in late]
        rss, anon, fds = ser(0), ser(1), ser(2)
        floor = {}
        for t, a in late:
            m = int((t - warmup) // 60)
            floor.setdefault(m, []).append(a[2] / a[3])
        # A minute with fewer than 3 samples (the last, cut short) has
        # no floor to speak of.
        floor = {m: min(v) for m, v in floor.items() if len(v) >= 3}
        mr = sum(y for _, y in rss) / len(rss)
        ma = sum(y for _, y in anon) / len(anon)
        mf = sum(y for _, y in fds) / len(fds)
        sr, sa = lsq(rss) or 0.0, lsq(anon) or 0.0
        sf = lsq(sorted(floor.items())) or 0.0
        why = []
        note = None
        tol = max(256.0, 0.01 * ma)
        if sa * 10 > tol:
            step = plateau(anon, tol)
            if step is None:
                why.append("heap grows %.0f KiB/10min" % (sa * 10))
            else:
                note = ("ok (heap rose +%.0f KiB until minute %.0f, then flat "
                        "for %.0f min)" % step)
        if sf * 10 > max(1.0, 0.02 * mf):
            why.append("fds grow %.2f/10min" % (sf * 10))
        if why:
            verdict = "GROWS: " + "; ".join(why)
            bad.append("%s: %s" % (role, verdict))
        elif note:
            verdict = note
        elif sr * 10 > max(256.0, 0.01 * mr):
            verdict = "ok (file pages +%.0f KiB/10min)" % (sr * 10)
        else:
            verdict = "ok"
        print("%-14s %5d %5d %9.0f %9.1f %9.0f %9.1f %7.1f %8.3f  %s" % (
            role, nproc, len(late), mr, sr, ma, sa, mf, sf, verdict))
    sizes = []
    try:
        with open(path("queue.log")) as f:
            for l in f:
                p = l.split()
                m = [x for x in p if x.startswith("mdb=")]
                if m and float(p[0]) >= warmup:
                    sizes.append(int(m[0][4:]))
    except OSError:
        pass
    if sizes:
        print("queue file data.mdb after the warm-up: %d KiB, at the end "
              "%d KiB, largest %d KiB" % (sizes[0] // 1024,
                                          sizes[-1] // 1024,
                                          max(sizes) // 1024))


def dump_rcpts(name):
    """Recipients of an smtp-sink -D dump, one entry a message and
    recipient."""
    r = []
    try:
        with open(path(name), "rb") as f:
            for l in f:
                if l.startswith(b"X-Rcpt-Args: <"):
                    r.append(l[14:l.index(b">")].decode().lower())
    except OSError:
        pass
    return r


def dsn_blocks(msg):
    """(final recipient, action) of each block of one DSN's text."""
    out = []
    cur = None
    for l in msg.splitlines():
        l = l.rstrip("\r")
        if l.lower().startswith("final-recipient:"):
            cur = l.split(";", 1)[-1].strip().lower()
        elif l.lower().startswith("action:") and cur:
            out.append((cur, l.split(":", 1)[1].strip().lower()))
            cur = None
    return out


def dsns():
    """(final recipient, action, where) of each block of each DSN: at the
    DSN sink ("sink"), or still queued ("queued": run.sh saved their raw
    text in live-dsn/)."""
    out = []
    try:
        data = open(path("dumps/dsn"), "rb").read().decode("utf-8",
                                                           "replace")
    except OSError:
        data = ""
    for msg in re.split(r"(?m)^X-Client-Addr: ", data)[1:]:
        out += [b + ("sink",) for b in dsn_blocks(msg)]
    try:
        live = os.listdir(path("live-dsn"))
    except OSError:
        live = []
    for n in live:
        with open(path("live-dsn/" + n), "rb") as f:
            out += [b + ("queued",) for b in
                    dsn_blocks(f.read().decode("utf-8", "replace"))]
    return out


def sinklog(name, word):
    r = []
    try:
        with open(path(name)) as f:
            for l in f:
                p = l.split()
                if len(p) >= 2 and p[0] == word:
                    r.append(p[1].lower())
    except OSError:
        pass
    return r


def count(lst):
    c = {}
    for x in lst:
        c[x] = c.get(x, 0) + 1
    return c


def accounting():
    acked, uncertain = set(), set()
    with open(path("sent.log")) as f:
        for l in f:
            p = l.split()
            if len(p) != 6 or p[0] != "SENT":
                continue
            tag, dom, asked, ack, rc = p[1], p[2], int(p[3]), int(p[4]), \
                int(p[5])
            if tag[0] in "bc" and rc != 0:
                ack = 0	# a parallel burst: no prefix to trust
            for n in range(1, asked + 1):
                a = "%dk%sx@%s" % (n, tag, dom)
                (acked if n <= ack else uncertain).add(a)
    seen = count(dump_rcpts("dumps/ok") + dump_rcpts("dumps/etrn") +
                 dump_rcpts("dumps/atrn") + sinklog("defer.log", "ACCEPT") +
                 sinklog("reject.log", "ACCEPT"))
    refused = set(sinklog("reject.log", "REJECT"))
    blocks = dsns()
    failed = count(a for a, act, _ in blocks if act == "failed")
    other = [b for b in blocks if b[1] != "failed"]
    live = {}
    with open(path("final.json")) as f:
        for l in f:
            if l.strip():
                for r in json.loads(l)["recipients"]:
                    if r["state"] in ("queued", "deferred", "held",
                                      "active"):
                        live[r["address"].lower()] = r["state"]
    logfail = set()
    pat = re.compile(r" to=<([^>]*)>, .* status=(bounced|expired) ")
    with open(path("posternd.log"), errors="replace") as f:
        for l in f:
            if "status=bounced" in l or "status=expired" in l:
                m = pat.search(l)
                if m:
                    logfail.add(m.group(1).lower())
    tally = {}
    dup = 0
    viol = {}

    def v(kind, a):
        viol.setdefault(kind, []).append(a)

    for a in acked:
        dom = a.split("@", 1)[1]
        t = tally.setdefault(dom, [0, 0, 0, 0, 0])
        s, fd, q = seen.get(a, 0), failed.get(a, 0), a in live
        t[0] += 1
        if s and fd:
            v("delivered and a DSN", a)
        elif s and q:
            v("delivered and still live", a)
        elif s:
            t[1] += 1
            dup += s > 1
        elif fd == 1 and not q:
            t[3] += 1
        elif fd > 1:
            v("DSN more than once", a)
        elif q and not fd:
            t[2] += 1
        elif fd and q:
            v("DSN and still live", a)
        else:
            v("lost", a)
            t[4] += 1
    for a in logfail:
        if a in acked and failed.get(a, 0) == 0:
            v("failed in the log without a DSN", a)
    for a in failed:
        if a not in refused:
            v("DSN for an address no sink refused", a)
    for b in other:
        v("DSN that is not a failure (%s)" % b[1], b[0])
    extra = [a for a in seen if a not in acked]
    extra_unc = [a for a in extra if a in uncertain]
    print("== accounting: every acknowledged recipient")
    print("%-12s %8s %9s %8s %7s %5s" % ("domain", "acked", "delivered",
                                         "deferred", "failed", "lost"))
    tot = [0] * 5
    for dom in sorted(tally):
        t = tally[dom]
        tot = [x + y for x, y in zip(tot, t)]
        print("%-12s %8d %9d %8d %7d %5d" % ((dom,) + tuple(t)))
    print("%-12s %8d %9d %8d %7d %5d" % (("total",) + tuple(tot)))
    print("DSNs: %d blocks (%d failure, %d of them still queued), %d recipients refused at the "
          "reject sink; delivered twice or more: %d; at a sink but not "
          "acknowledged: %d (%d of them the uncertain message of a failed "
          "smtp-source); unacknowledged: %d" % (
              len(blocks), sum(failed.values()),
              sum(1 for b in blocks if b[2] == "queued"), len(refused), dup,
              len(extra), len(extra_unc), len(uncertain)))
    for kind in sorted(viol):
        lst = viol[kind]
        bad.append("%s: %d" % (kind, len(lst)))
        print("VIOLATION %s: %d (e.g. %s)" % (kind, len(lst),
                                              " ".join(sorted(lst)[:5])))
    if len(extra) > len(extra_unc):
        print("note: %d addresses at sinks neither acknowledged nor "
              "uncertain (e.g. %s)" % (
                  len(extra) - len(extra_unc),
                  " ".join(sorted(set(extra) - set(extra_unc))[:5])))


growth()
print()
accounting()
print()
if bad:
    print("soak: FAIL: " + "; ".join(bad))
    sys.exit(1)
print("soak: PASS")
