"""peer_rss.py - sample the resident memory of processes while a case runs
(tests/integ/cases/810-peer-server.sh, 815-peer-client.sh).

    peer_rss.py OUT STOP [--children PPID] [PID...]

Every 50 ms it reads VmRSS from /proc/PID/status of each PID given and,
with --children, of each current child of PPID (read again each time: a
worker that is restarted is a new process). It stops once the file STOP
exists (or after 300 s, so that it never outlives a case), then writes OUT:

    PID FIRST_KB MAX_KB     one line a process it saw
    growth KB               the largest MAX_KB - FIRST_KB of them
    samples N

The first sample is the process's baseline: start the sampler before the
misbehaviour begins.
"""
import os
import sys
import time

out, stop = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
ppid = None
pids = []
while args:
    a = args.pop(0)
    if a == "--children":
        ppid = args.pop(0)
    else:
        pids.append(a)


def children(p):
    try:
        with open("/proc/%s/task/%s/children" % (p, p)) as f:
            return f.read().split()
    except OSError:
        return []


def rss(p):
    try:
        with open("/proc/%s/status" % p) as f:
            for l in f:
                if l.startswith("VmRSS:"):
                    return int(l.split()[1])
    except (OSError, ValueError):
        pass
    return None


first, peak = {}, {}
n = 0
end = time.monotonic() + 300
while not os.path.exists(stop) and time.monotonic() < end:
    for p in pids + (children(ppid) if ppid else []):
        kb = rss(p)
        if kb is None:
            continue
        first.setdefault(p, kb)
        peak[p] = max(peak.get(p, 0), kb)
    n += 1
    time.sleep(0.05)
with open(out + ".tmp", "w") as f:
    for p in sorted(first):
        f.write("%s %d %d\n" % (p, first[p], peak[p]))
    f.write("growth %d\n" % max([peak[p] - first[p] for p in first] or [0]))
    f.write("samples %d\n" % n)
os.rename(out + ".tmp", out)
