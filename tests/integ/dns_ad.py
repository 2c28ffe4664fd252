"""dns_ad.py - one DNS query with the AD bit set (RFC 6840 §5.7: ask a
validating resolver to say whether the answer is secure), for
tests/integ/cases/900-dane.sh.

    dns_ad.py SERVER_PORT NAME TYPE

Asks 127.0.0.1:SERVER_PORT over UDP (EDNS0, 1232 octets; TCP when the
answer is truncated) and prints "RCODE ad=0|1 answers=N", e.g.
"NOERROR ad=1 answers=1". Exits 1 when no answer came within 5 s.
"""
import random
import socket
import struct
import sys

TYPES = {"A": 1, "NS": 2, "MX": 15, "TXT": 16, "AAAA": 28, "TLSA": 52}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN",
          4: "NOTIMP", 5: "REFUSED"}

port, name, qtype = int(sys.argv[1]), sys.argv[2], sys.argv[3].upper()
qid = random.randrange(65536)
q = struct.pack(">HHHHHH", qid, 0x0120, 1, 0, 0, 1)	# RD, AD
for label in name.rstrip(".").split("."):
    q += bytes([len(label)]) + label.encode()
q += b"\x00" + struct.pack(">HH", TYPES[qtype], 1)
q += b"\x00" + struct.pack(">HHIH", 41, 1232, 0, 0)	# OPT, no DO


def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    try:
        s.sendto(q, ("127.0.0.1", port))
        return s.recv(65535)
    finally:
        s.close()


def tcp():
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


try:
    r = udp()
    if len(r) >= 4 and r[2] & 0x02:
        r = tcp()
except OSError:
    sys.exit(1)
if len(r) < 12 or r[:2] != q[:2]:
    sys.exit(1)
flags = struct.unpack(">H", r[2:4])[0]
print("%s ad=%d answers=%d" % (RCODES.get(flags & 0xf, str(flags & 0xf)),
      (flags >> 5) & 1, struct.unpack(">H", r[6:8])[0]))
