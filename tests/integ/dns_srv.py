"""dns_srv.py - a small DNS server that misbehaves on purpose, for
tests/integ/cases/830-resolver.sh.

    dns_srv.py LOG SINK_IP

It listens on 127.0.0.1 (UDP and TCP, one free port: printed on the first
line of standard output), answers the zone x.test below, and appends one
line a query to LOG ("UDP MX name", "TCP A name"; flushed at once). Built
with struct only (no DNS library), so that it can send what no real server
would. Names (any case) under x.test:

    sink.x.test         A SINK_IP (no AAAA: NODATA)
    ok.x.test           MX 10 sink.x.test
    servfail.x.test     SERVFAIL, every type
    tc.x.test           MX: 40 hosts with long names (h00-aaa...tc.x.test,
                        each A SINK_IP), too much for 512 bytes: over UDP
                        only the header with TC set, the full set over TCP
    cname.x.test        MX 10 alias.x.test; alias.x.test is a CNAME of
                        sink.x.test (RFC 2181 §10.3 says it must not be)
    numeric.x.test      MX 10 127.0.0.5 (a name made of digits)
    numeric2.x.test     MX 10 127.0.0.5, MX 20 sink.x.test
    bracket.x.test      MX 10 [127.0.0.5] (labels "[127" "0" "0" "5]")
    nullmx.x.test       MX 0 . (RFC 7505)
    under.x.test        MX 10 mx_1.x.test (an underscore; A SINK_IP)
    spacey.x.test       MX 10 "a b.x.test" (a space in a label)
    ptrloop.x.test      MX answer whose owner is a pointer to itself
    ptrout.x.test       MX answer whose exchange points past the end
    badid.x.test        the answer under another id (to be ignored)
    short.x.test        the answer cut in the middle of its record
    tiny.x.test         five bytes
    rdlen.x.test        an MX record whose rdlength runs past the end
    anything else       NXDOMAIN
"""
import os
import socket
import struct
import sys
import threading

T_A, T_CNAME, T_MX, T_AAAA = 1, 5, 15, 28
LOG = sys.argv[1]
SINK = socket.inet_aton(sys.argv[2])
lock = threading.Lock()


def log(line):
    with lock:
        with open(LOG, "a") as f:
            f.write(line + "\n")


def name(n):
    """n in wire format, no compression; "" is the root."""
    out = b""
    for label in n.split(".") if n else []:
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def rr(owner, typ, rdata, ttl=0):
    return name(owner) + struct.pack(">HHIH", typ, 1, ttl, len(rdata)) + rdata


def mx(owner, pref, host):
    return rr(owner, T_MX, struct.pack(">H", pref) + name(host))


TCHOSTS = ["h%02d-%s.tc.x.test" % (i, "a" * 50) for i in range(40)]


def parse_q(q):
    """(id, flags, qname, qtype, question bytes) or None."""
    if len(q) < 12:
        return None
    qid, flags, qd = struct.unpack(">HHH", q[:6])
    if qd != 1:
        return None
    pos, labels = 12, []
    while pos < len(q) and q[pos] != 0:
        ln = q[pos]
        if ln & 0xC0:
            return None
        labels.append(q[pos + 1:pos + 1 + ln].decode("latin-1"))
        pos += 1 + ln
    if pos + 5 > len(q):
        return None
    qtype = struct.unpack(">H", q[pos + 1:pos + 3])[0]
    return qid, flags, ".".join(labels), qtype, q[12:pos + 5]


def answer(q, tcp):
    """The reply bytes for query q (None: no reply)."""
    p = parse_q(q)
    if p is None:
        return None
    qid, flags, qn, qtype, question = p
    n = qn.lower()
    tname = {T_A: "A", T_MX: "MX", T_AAAA: "AAAA", T_CNAME: "CNAME"}
    log("%s %s %s" % ("TCP" if tcp else "UDP", tname.get(qtype, qtype), n))
    rd = flags & 0x0100

    def reply(rcode=0, ans=(), tc=False, rid=qid, count=None):
        fl = 0x8400 | rd | 0x0080 | rcode | (0x0200 if tc else 0)
        an = len(ans) if count is None else count
        return struct.pack(">HHHHHH", rid, fl, 1, an, 0, 0) + question + \
            b"".join(ans)

    if n == "servfail.x.test":
        return reply(2)
    if n in ("sink.x.test", "mx_1.x.test") or n.endswith(".tc.x.test"):
        return reply(0, [rr(qn, T_A, SINK)] if qtype == T_A else [])
    if n == "alias.x.test":
        ans = [rr(qn, T_CNAME, name("sink.x.test"))]
        if qtype == T_A:
            ans.append(rr("sink.x.test", T_A, SINK))
        return reply(0, ans if qtype in (T_A, T_CNAME) else ans[:1])
    mxs = {
        "ok.x.test": [(10, "sink.x.test")],
        "cname.x.test": [(10, "alias.x.test")],
        "numeric.x.test": [(10, "127.0.0.5")],
        "numeric2.x.test": [(10, "127.0.0.5"), (20, "sink.x.test")],
        "bracket.x.test": [(10, "[127.0.0.5]")],
        "nullmx.x.test": [(0, "")],
        "under.x.test": [(10, "mx_1.x.test")],
        "spacey.x.test": [(10, "a b.x.test")],
        "tc.x.test": [(10 + i, h) for i, h in enumerate(TCHOSTS)],
    }
    if n in mxs:
        if qtype != T_MX:
            return reply(0)
        if n == "tc.x.test" and not tcp:
            return reply(0, tc=True)
        return reply(0, [mx(qn, p, h) for p, h in mxs[n]])
    good = mx(qn, 10, "sink.x.test")
    if n == "ptrloop.x.test":
        # The owner: a pointer to the pointer itself (offset 12 + q).
        off = 12 + len(question)
        rec = struct.pack(">H", 0xC000 | off) + good[len(name(qn)):]
        return reply(0, [rec])
    if n == "ptrout.x.test":
        rdata = struct.pack(">H", 10) + struct.pack(">H", 0xC000 | 0x3FFF)
        rec = struct.pack(">H", 0xC00C) + struct.pack(">HHIH", T_MX, 1, 0,
                                                      len(rdata)) + rdata
        return reply(0, [rec])
    if n == "badid.x.test":
        return reply(0, [good], rid=(qid + 1) & 0xFFFF)
    if n == "short.x.test":
        return reply(0, [good])[:-7]
    if n == "tiny.x.test":
        return reply(0, [good])[:5]
    if n == "rdlen.x.test":
        rec = name(qn) + struct.pack(">HHIH", T_MX, 1, 0, 400) + \
            struct.pack(">H", 10) + name("sink.x.test")
        return reply(0, [rec])
    return reply(3)


def udp(s):
    while True:
        q, peer = s.recvfrom(4096)
        r = answer(q, False)
        if r is not None:
            s.sendto(r, peer)


def tcp_conn(c):
    try:
        c.settimeout(10)
        while True:
            hdr = c.recv(2)
            if len(hdr) < 2:
                return
            ln = struct.unpack(">H", hdr)[0]
            q = b""
            while len(q) < ln:
                chunk = c.recv(ln - len(q))
                if not chunk:
                    return
                q += chunk
            r = answer(q, True)
            if r is not None:
                c.sendall(struct.pack(">H", len(r)) + r)
    except OSError:
        pass
    finally:
        c.close()


def main():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for _ in range(50):
        u.bind(("127.0.0.1", 0))
        try:
            t.bind(("127.0.0.1", u.getsockname()[1]))
            break
        except OSError:
            u.close()
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t.listen(16)
    print(u.getsockname()[1], flush=True)
    threading.Thread(target=udp, args=(u,), daemon=True).start()
    while True:
        c, _ = t.accept()
        threading.Thread(target=tcp_conn, args=(c,), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        os._exit(0)
