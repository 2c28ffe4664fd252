"""dns_capture.py - one DNS query, its raw reply kept as a seed of the
tlsa fuzz target (tests/fuzz/fuzz_tlsa.c; tests/fuzz/tlsa_seeds.sh).

    dns_capture.py SERVER_PORT NAME TYPE OUT [do]

Asks 127.0.0.1:SERVER_PORT as route_tlsa.c does (RD, AD, EDNS0 of 1232
octets; "do": the DO bit too, so RRSIGs come in the answer section), over
UDP, TCP when truncated, and writes a flag byte 0 then the reply's bytes
to OUT. Exits 1 when no answer came within 5 s.
"""
import random
import socket
import struct
import sys

TYPES = {"A": 1, "MX": 15, "TLSA": 52}

port, name, qtype, out = (int(sys.argv[1]), sys.argv[2],
                          sys.argv[3].upper(), sys.argv[4])
dnssec_ok = len(sys.argv) > 5 and sys.argv[5] == "do"
qid = random.randrange(65536)
q = struct.pack(">HHHHHH", qid, 0x0120, 1, 0, 0, 1)	# RD, AD
for label in name.rstrip(".").split("."):
    q += bytes([len(label)]) + label.encode()
q += b"\x00" + struct.pack(">HH", TYPES[qtype], 1)
q += b"\x00" + struct.pack(">HHIH", 41, 1232,
                           0x8000 if dnssec_ok else 0, 0)	# OPT


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
with open(out, "wb") as f:
    f.write(b"\x00" + r)
