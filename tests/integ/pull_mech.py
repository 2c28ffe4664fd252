"""pull_mech.py - an ODMR provider that offers one AUTH mechanism, for
520-pull's checks of what `postern pull` sends to a server that offers
little: no STARTTLS, "AUTH <MECH>" and ATRN. CRAM-MD5 is checked against
the password (user site1, pw1) and ATRN answered 453; PLAIN is taken as
whatever comes. Logs each line it reads (AUTH data included: a test
password) to LOG, and serves one connection.

usage: pull_mech.py ADDR PORT MECH LOG   (prints "ready")
"""
import base64, hashlib, hmac, socket, sys

addr, port, mech, logf = sys.argv[1], int(sys.argv[2]), sys.argv[3], \
    sys.argv[4]
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
    elif v == "ATRN":
        send("453 4.0.0 You have no mail\r\n")
    elif v == "QUIT":
        send("221 2.0.0 bye\r\n")
        break
    else:
        send("502 5.5.1 no\r\n")
s.close()
