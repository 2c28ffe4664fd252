"""monitor.py - the soak's periodic work beside the traffic (run.sh).

    monitor.py DIR MASTER_PID PD_LOG STOPFILE MAX_SECONDS

Every 10 s (ticks on an absolute schedule, the sleep being the period, not
a synchronisation):
  - samples every posternd process: the master MASTER_PID and all its
    descendants whose executable is posternd (workers come and go), into
    DIR/samples.csv: t (s since start), pid, ppid, role, VmRSS, RssAnon
    (KiB), open fds (entries of /proc/PID/fd) and how many of them are
    TCP connections in flight: ESTABLISHED in /proc/net/tcp*, or gone
    from the kernel's tables by the time they are read (sessions come
    and go with the traffic; a leaked one ends in CLOSE_WAIT once the
    peer has gone, and stays counted in the rest). The role of a master's
    child is what the master logged for it ("started smtpd, pid N" in
    PD_LOG, read incrementally); a child of sched is "worker", of odmr
    "odmr-session", else "<parent role>-child".
  - runs `postern queue --json` (must exit 0 and every line parse):
    DIR/queue.log "t rc messages recipients state=count... mdb=SIZE"
    (SIZE: the queue file data.mdb, octets).
Every 60 s (first at 30 s): `postern etrn` for etrn.soak against the SMTP
port and fetchmail (protocol ODMR, fetchdomains atrn.soak) against
odmr_listen: DIR/requests.log "t ETRN|ATRN rc ok|FAIL reply".
ETRN succeeds with exit 0 (250-253); fetchmail with 0 (mail fetched) or 1
(no mail: 453). Runs until STOPFILE exists or MAX_SECONDS have passed.
Environment: POSTERN (the postern binary), POSTERN_CONF, QUEUE_DIR,
SMTP_PORT, FETCHMAILRC.
"""
import json
import os
import subprocess
import sys
import time

TICK = 10		# seconds between samples
REQ_EVERY = 6		# ticks between ETRN/ATRN rounds (a minute)
REQ_TIMEOUT = 60	# a hung etrn, fetchmail or queue listing

out, master, pdlog, stopfile, maxsec = (sys.argv[1], int(sys.argv[2]),
                                        sys.argv[3], sys.argv[4],
                                        float(sys.argv[5]))
postern = os.environ["POSTERN"]
roles = {master: "master"}
mdb = os.path.join(os.environ["QUEUE_DIR"], "data.mdb")
logpos = 0
t0 = time.monotonic()


def now():
    return time.monotonic() - t0


def read_roles():
    """Learn the roles of the master's children from its log."""
    global logpos
    tag = "postern/master[%d]: started " % master
    try:
        with open(pdlog, "rb") as f:
            f.seek(logpos)
            data = f.read()
    except OSError:
        return
    end = data.rfind(b"\n") + 1
    logpos += end
    for l in data[:end].decode("utf-8", "replace").splitlines():
        if l.startswith(tag):
            role, _, pid = l[len(tag):].partition(", pid ")
            if pid.isdigit():
                roles[int(pid)] = role


def procs():
    """(pid, ppid) of every process."""
    r = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % e) as f:
                st = f.read()
            ppid = int(st[st.rfind(")") + 2:].split()[1])
            r.append((int(e), ppid))
        except (OSError, ValueError, IndexError):
            pass
    return r


def socket_states():
    """TCP state (hex, "01" ESTABLISHED) of each socket inode in the TCP
    tables, and "-" for the other sockets the kernel lists."""
    r = {}
    for n in ("/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp",
              "/proc/net/udp6", "/proc/net/unix"):
        try:
            with open(n) as f:
                next(f)
                for l in f:
                    p = l.split()
                    if n.endswith("unix"):
                        if len(p) > 6:
                            r[p[6]] = "-"
                    elif len(p) > 9:
                        r[p[9]] = p[3] if "tcp" in n else "-"
        except (OSError, StopIteration):
            pass
    return r


def fd_sockets(pid):
    """The number of open descriptors of pid, and the inodes of its
    sockets."""
    n = 0
    socks = []
    d = "/proc/%d/fd" % pid
    for x in os.listdir(d):
        n += 1
        try:
            l = os.readlink(os.path.join(d, x))
        except OSError:
            continue
        if l.startswith("socket:["):
            socks.append(l[8:-1])
    return n, socks


def status(pid):
    v = {}
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            k, _, val = l.partition(":")
            if k in ("VmRSS", "RssAnon"):
                v[k] = int(val.split()[0])
    return v


def sample(csv):
    read_roles()
    kids = {}
    for pid, ppid in procs():
        kids.setdefault(ppid, []).append(pid)
    todo = [(master, 0)]
    t = now()
    rows = []
    while todo:
        pid, ppid = todo.pop()
        try:
            if not os.readlink("/proc/%d/exe" % pid).endswith("posternd"):
                continue
            role = roles.get(pid)
            if role is None:
                prole = roles.get(ppid, "?")
                role = {"sched": "worker", "odmr": "odmr-session"}.get(
                    prole, prole + "-child")
            st = status(pid)
            nfd, socks = fd_sockets(pid)
        except (OSError, ValueError):
            continue	# gone meanwhile
        rows.append((t, pid, ppid, role, st.get("VmRSS", 0),
                     st.get("RssAnon", 0), nfd, socks))
        todo.extend((k, pid) for k in kids.get(pid, []))
    # The tables are read after the descriptors: a session that began
    # meanwhile is in them, and one that ended is in neither (in flight
    # too). A leaked socket stays, in CLOSE_WAIT once its peer is gone.
    states = socket_states()
    csv.write("".join("%.1f,%d,%d,%s,%d,%d,%d,%d\n" % (
        r[:7] + (sum(1 for i in r[7] if states.get(i, "01") == "01"),))
        for r in rows))
    csv.flush()
    return len(rows)


def queue(qlog):
    t = now()
    try:
        p = subprocess.run([postern, "queue", "--json"], capture_output=True,
                           timeout=REQ_TIMEOUT)
        rc = p.returncode
        msgs = [json.loads(l) for l in p.stdout.decode().splitlines()
                if l.strip()]
        states = {}
        for m in msgs:
            for r in m["recipients"]:
                states[r["state"]] = states.get(r["state"], 0) + 1
        text = "%d %d %s" % (len(msgs), sum(states.values()), " ".join(
            "%s=%d" % kv for kv in sorted(states.items())))
    except subprocess.TimeoutExpired:
        rc, text = -1, "timeout"
    except (ValueError, KeyError, TypeError) as e:
        rc, text = -2, "unparsable: %s" % str(e)[:200]
    try:
        text += " mdb=%d" % os.stat(mdb).st_size
    except OSError:
        pass
    qlog.write("%.1f %d %s\n" % (t, rc, text))
    qlog.flush()


def request(rlog, what, args, good):
    t = now()
    try:
        p = subprocess.run(args, capture_output=True, timeout=REQ_TIMEOUT,
                           env=dict(os.environ, HOME=out))
        rc = p.returncode
        said = (p.stdout + p.stderr).decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        rc, said = -1, "timeout"
    said = " | ".join(l.strip() for l in said.splitlines() if l.strip())
    rlog.write("%.1f %s %d %s %s\n" % (t, what, rc,
                                       "ok" if rc in good else "FAIL",
                                       said[:300]))
    rlog.flush()


def requests(rlog):
    request(rlog, "ETRN", [postern, "etrn", "--tls", "none",
                           "127.0.0.1:%s" % os.environ["SMTP_PORT"],
                           "etrn.soak"], (0,))
    request(rlog, "ATRN", ["fetchmail", "-f", os.environ["FETCHMAILRC"],
                           "--nosyslog", "-i", os.path.join(out, "fmid")],
            (0, 1))


with open(os.path.join(out, "samples.csv"), "a") as csv, \
        open(os.path.join(out, "queue.log"), "a") as qlog, \
        open(os.path.join(out, "requests.log"), "a") as rlog:
    csv.write("t,pid,ppid,role,rss_kib,anon_kib,fds,fds_est\n")
    k = 0
    while not os.path.exists(stopfile) and now() < maxsec:
        sample(csv)
        queue(qlog)
        if k % REQ_EVERY == 3:
            requests(rlog)
        k += 1
        # Wait for the next tick, noticing STOPFILE within a second.
        while now() < k * TICK and not os.path.exists(stopfile):
            time.sleep(min(1.0, max(0.0, k * TICK - now())))
