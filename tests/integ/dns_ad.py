"""dns_ad.py - one DNS query with the AD bit set (RFC 6840 §5.7: ask a
validating resolver to say whether the answer is secure), for
tests/integ/cases/900-dane.sh.

    dns_ad.py SERVER_PORT NAME TYPE

Asks 127.0.0.1:SERVER_PORT over UDP (EDNS0, 1232 octets; TCP when the
answer is truncated) and prints "RCODE ad=0|1 answers=N", e.g.
"NOERROR ad=1 answers=1". Exits 1 when no answer came within 5 s.

ask() is also tests/fuzz/dns_capture.py's (which imports this file).
"""
import random
import socket
import struct
import sys

TYPES = {"A": 1, "NS": 2, "MX": 15, "TXT": 16, "AAAA": 28, "TLSA": 52}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN",
          4: "NOTIMP", 5: "REFUSED"}


def query(name, qtype, dnssec_ok=False):
    """The query as route_tlsa.c sends it: RD, AD, EDNS0 of 1232 octets
    (and DO when dnssec_ok: RRSIGs then come in the answer section)."""
    q = struct.pack(">HHHHHH", random.randrange(65536), 0x0120, 1, 0, 0,
                    1)	# RD, AD
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack(">HH", TYPES[qtype], 1)
    q += b"\x00" + struct.pack(">HHIH", 41, 1232,
                               0x8000 if dnssec_ok else 0, 0)	# OPT
    return q


def udp(q, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    try:
        s.sendto(q, ("127.0.0.1", port))
        return s.recv(65535)
    finally:
        s.close()


def tcp(q, port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(struct.pack(">H", len(q)) + q)
        buf = b""
        while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
            d = s.recv(65535)
            if not d:
                break
            buf += d
        return buf[2:]
    finally:
        s.close()


def ask(port, name, qtype, dnssec_ok=False):
    """The reply to one query to 127.0.0.1:port (over TCP when the UDP one
    is truncated), or None when none came within 5 s or it is not the
    reply to ours."""
    q = query(name, qtype, dnssec_ok)
    try:
        r = udp(q, port)
        if len(r) >= 4 and r[2] & 0x02:
            r = tcp(q, port)
    except OSError:
        return None
    if len(r) < 12 or r[:2] != q[:2]:
        return None
    return r


def main():
    port, name, qtype = int(sys.argv[1]), sys.argv[2], sys.argv[3].upper()
    r = ask(port, name, qtype)
    if r is None:
        sys.exit(1)
    flags = struct.unpack(">H", r[2:4])[0]
    print("%s ad=%d answers=%d" % (RCODES.get(flags & 0xf,
                                              str(flags & 0xf)),
          (flags >> 5) & 1, struct.unpack(">H", r[6:8])[0]))


if __name__ == "__main__":
    main()
