#!/usr/bin/env python3
"""queue_seeds.py - seeds for fuzz_queue_rec from a real queue.

Usage: queue_seeds.py QUEUE_DIR OUT_DIR [QUEUE_ID...]

Reads the queue with `mdb_dump -a -p` (lmdb-utils) and writes one corpus
file per record, with fuzz_queue_rec.c's type byte in front: 0 a message
record (msg, 8-octet key), 1 a recipient record (msg, kind 1 key; active),
2 a flush request (flushq), 3 a bydom key, 4 a queue id (the arguments).
"""
import hashlib
import os
import re
import subprocess
import sys

KEY_MSUB = 13       # queue_int.h: id(8) kind(1) n(4)
MSUB_RCPT = 0x01


def unprint(s):
    """mdb_dump's print format: \\xx hex escapes, \\\\ a backslash."""
    out = bytearray()
    i = 0
    b = s.encode('latin-1')
    while i < len(b):
        if b[i:i + 1] == b'\\':
            if b[i + 1:i + 2] == b'\\':
                out.append(0x5c)
                i += 2
            else:
                out.append(int(b[i + 1:i + 3], 16))
                i += 3
        else:
            out.append(b[i])
            i += 1
    return bytes(out)


def dump(qdir):
    """{database: [(key, value)]} of every named database."""
    txt = subprocess.run(['mdb_dump', '-a', '-p', qdir], check=True,
                         capture_output=True, text=True,
                         encoding='latin-1').stdout
    dbs = {}
    name = None
    rows = None
    pend = None
    for line in txt.split('\n'):
        if line.startswith('database='):
            name = line.split('=', 1)[1]
        elif line == 'HEADER=END':
            rows = dbs.setdefault(name or '', [])
            pend = None
        elif line == 'DATA=END':
            rows = None
        elif rows is not None and line.startswith(' '):
            if pend is None:
                pend = unprint(line[1:])
            else:
                rows.append((pend, unprint(line[1:])))
                pend = None
    return dbs


def main():
    qdir, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    seeds = []
    dbs = dump(qdir)
    for k, v in dbs.get('msg', []):
        if len(k) == 8:
            seeds.append(b'\x00' + v)
        elif len(k) == KEY_MSUB and k[8] == MSUB_RCPT:
            seeds.append(b'\x01' + v)
    for k, v in dbs.get('active', []):
        seeds.append(b'\x01' + v)
    for k, v in dbs.get('flushq', []):
        seeds.append(b'\x02' + v)
    for k, v in dbs.get('bydom', []):
        seeds.append(b'\x03' + k)
    for qid in sys.argv[3:]:
        if re.fullmatch(r'[0-9A-Za-z]+', qid):
            seeds.append(b'\x04' + qid.encode())
    for s in seeds:
        name = 'queue-' + hashlib.sha1(s).hexdigest()[:16]
        with open(os.path.join(out, name), 'wb') as f:
            f.write(s)
    print(f'queue_seeds: {len(seeds)} records')


if __name__ == '__main__':
    main()
