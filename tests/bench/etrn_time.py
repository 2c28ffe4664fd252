"""etrn_time.py - time one ETRN, for bench_etrn.sh.

    python3 etrn_time.py PORT NODE SINKFILE N LIMIT

Connects to 127.0.0.1:PORT, reads the greeting, says EHLO (untimed), then
sends `ETRN NODE` and times its reply; then QUIT, and reads SINKFILE (the
counters `smtp-sink -c` rewrites in place with carriage returns) every
millisecond until its last "mesg=" is at least N, or LIMIT seconds have
passed. One line on standard output:

    reply_ms=R flush_s=F code=C text=T

R: from writing the ETRN line to having read its whole reply; F: from
writing it to the first read of SINKFILE that saw N (the last message
delivered), or "timeout". Exit 0, or 1 on a timeout or a broken session.
The interpreter is already running when the clock starts, so its start-up
is in neither figure: both servers are measured the same way.
"""
import re
import socket
import sys
import time


def reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise EOFError("connection closed")
        lines.append(line.rstrip(b"\r\n").decode("utf-8", "replace"))
        if len(lines[-1]) < 4 or lines[-1][3] != "-":
            return lines


def count(path):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 256))
            tail = f.read()
    except OSError:
        return -1
    m = re.findall(rb"mesg=(\d+)", tail)
    return int(m[-1]) if m else -1


def main():
    port, node, sink, n, limit = (int(sys.argv[1]), sys.argv[2],
                                  sys.argv[3], int(sys.argv[4]),
                                  float(sys.argv[5]))
    s = socket.create_connection(("127.0.0.1", port), 10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    reply(f)
    s.sendall(b"EHLO bench.client.example\r\n")
    reply(f)
    t0 = time.monotonic()
    s.sendall(b"ETRN " + node.encode() + b"\r\n")
    r = reply(f)
    t1 = time.monotonic()
    s.sendall(b"QUIT\r\n")
    try:
        reply(f)
    except (EOFError, OSError):
        pass
    s.close()
    flush = "timeout"
    rc = 1
    end = t0 + limit
    while n > 0 and time.monotonic() < end:
        if count(sink) >= n:
            flush = "%.4f" % (time.monotonic() - t0)
            rc = 0
            break
        time.sleep(0.001)
    if n <= 0:
        flush, rc = "0", 0
    print("reply_ms=%.3f flush_s=%s code=%s text=%s" %
          ((t1 - t0) * 1000, flush, r[-1][:3], " ".join(r)))
    return rc


sys.exit(main())
