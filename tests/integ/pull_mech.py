"""pull_mech.py - an ODMR provider that offers one AUTH mechanism, for
520-pull's checks of what `postern pull` sends to a server that offers
little: no STARTTLS, "AUTH <MECH>" and ATRN. CRAM-MD5 is checked against
the password (user site1, pw1) and ATRN answered 453; PLAIN is taken as
whatever comes. Logs each line it reads (AUTH data included: a test
password) to LOG, and serves one connection.

usage: pull_mech.py ADDR PORT MECH LOG [MODE]   (prints "ready")

MODE "c1": ATRN is answered 453 with a C1 control (CSI) and a bidi
override in its text, which the pull must print escaped. MODE "hostile":
ATRN is answered 250 and, once the site greets, the provider sends EHLO,
then ETRN, TURN, ATRN, AUTH and STARTTLS (each reply logged as "R: ..."),
then a NOOP every 0.3 s until the site closes (logged "closed after S s,
last: REPLY") or 30 s pass. MODE "bdat": ATRN is answered 250 and, once
the site greets, the provider sends the message in the file named by
the environment's BDAT_MSG to <r@a.example> with BDAT: MAIL, RCPT and
three chunks in one write (the last one LAST), then a BDAT with no
transaction, whose octets are commands, then RSET and QUIT; it logs the EHLO
reply ("ehlo: ...") and each reply ("R: ...").
"""
import time
import base64, hashlib, hmac, socket, sys

addr, port, mech, logf = sys.argv[1], int(sys.argv[2]), sys.argv[3], \
    sys.argv[4]
mode = sys.argv[5] if len(sys.argv) > 5 else ""
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((addr, port))
ls.listen(1)
print("ready")
sys.stdout.flush()
s, _ = ls.accept()
f = s.makefile("rb")
log = open(logf, "w")


def send(t):
    s.sendall(t.encode())


def line():
    l = f.readline()
    log.write(l.decode("latin-1"))
    log.flush()
    return l.rstrip(b"\r\n").decode("latin-1")


def reply():
    """One reply (all its lines), or "" at EOF."""
    out = []
    while True:
        l = f.readline()
        if not l:
            return " ".join(out)
        l = l.rstrip(b"\r\n").decode("latin-1")
        out.append(l)
        if len(l) < 4 or l[3] != "-":
            return " ".join(out)


def reversed_session():
    log.write("greeting: %s\n" % reply())
    send("EHLO provider.test.example\r\n")
    log.write("ehlo: %s\n" % reply())
    for c in ("ETRN x.example", "TURN", "ATRN", "AUTH PLAIN AGEAYg==",
              "STARTTLS"):
        send(c + "\r\n")
        log.write("R: %s -> %s\n" % (c, reply()))
        log.flush()
    t0 = time.time()
    last = ""
    while time.time() - t0 < 30:
        try:
            send("NOOP\r\n")
        except OSError:
            break
        r = reply()
        if not r:
            break
        last = r
        if r.startswith("421"):
            break
        time.sleep(0.3)
    log.write("closed after %.1f s, last: %s\n" % (time.time() - t0, last))
    log.flush()


def bdat_session():
    import os
    msg = open(os.environ["BDAT_MSG"], "rb").read()
    log.write("greeting: %s\n" % reply())
    send("EHLO provider.test.example\r\n")
    log.write("ehlo: %s\n" % reply())
    a, b = len(msg) // 3, 2 * len(msg) // 3
    s.sendall(b"MAIL FROM:<p@provider.test.example>\r\n"
              b"RCPT TO:<r@a.example>\r\n" +
              b"BDAT %d\r\n" % a + msg[:a] +
              b"BDAT %d\r\n" % (b - a) + msg[a:b] +
              b"BDAT %d LAST\r\n" % (len(msg) - b) + msg[b:])
    for _ in range(5):
        log.write("R: %s\n" % reply())
    evil = b"MAIL FROM:<evil@provider.test.example>\r\n"
    s.sendall(b"BDAT %d\r\n" % len(evil) + evil + b"RSET\r\nQUIT\r\n")
    for _ in range(3):
        log.write("R: %s\n" % reply())
    log.flush()


send("220 mech.test.example ODMR\r\n")
chal = "<4711.1@mech.test.example>"
while True:
    l = line()
    if not l:
        break
    v = l.split(" ")[0].upper()
    if v == "EHLO":
        send("250-mech.test.example\r\n250-AUTH %s\r\n250 ATRN\r\n" % mech)
    elif v == "AUTH" and l.upper() == "AUTH CRAM-MD5":
        send("334 %s\r\n" % base64.b64encode(chal.encode()).decode())
        r = base64.b64decode(line()).decode()
        want = "site1 " + hmac.new(b"pw1", chal.encode(),
                                   hashlib.md5).hexdigest()
        send("235 2.7.0 ok\r\n" if r == want else "535 5.7.8 no\r\n")
    elif v == "AUTH":
        send("235 2.7.0 ok\r\n")
    elif v == "ATRN" and mode == "c1":
        s.sendall(b"453 4.0.0 \xc2\x9b2J no mail \xe2\x80\xae evil\r\n")
    elif v == "ATRN" and mode == "hostile":
        send("250 2.0.0 OK now reversing the connection\r\n")
        reversed_session()
        break
    elif v == "ATRN" and mode == "bdat":
        send("250 2.0.0 OK now reversing the connection\r\n")
        bdat_session()
        break
    elif v == "ATRN":
        send("453 4.0.0 You have no mail\r\n")
    elif v == "QUIT":
        send("221 2.0.0 bye\r\n")
        break
    else:
        send("502 5.5.1 no\r\n")
s.close()
