"""dns_capture.py - one DNS query, its raw reply kept as a seed of the
tlsa fuzz target (tests/fuzz/fuzz_tlsa.c; tests/fuzz/tlsa_seeds.sh).

    dns_capture.py SERVER_PORT NAME TYPE OUT [do]

Asks 127.0.0.1:SERVER_PORT as route_tlsa.c does (RD, AD, EDNS0 of 1232
octets; "do": the DO bit too, so RRSIGs come in the answer section), over
UDP, TCP when truncated (tests/integ/dns_ad.py's ask()), and writes a
flag byte 0 then the reply's bytes to OUT. Exits 1 when no answer came
within 5 s.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integ"))
import dns_ad  # noqa: E402

port, name, qtype, out = (int(sys.argv[1]), sys.argv[2],
                          sys.argv[3].upper(), sys.argv[4])
r = dns_ad.ask(port, name, qtype,
               dnssec_ok=len(sys.argv) > 5 and sys.argv[5] == "do")
if r is None:
    sys.exit(1)
with open(out, "wb") as f:
    f.write(b"\x00" + r)
