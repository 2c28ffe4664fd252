#!/usr/bin/env python3
"""capture.py - record real SMTP peers' bytes as fuzz seeds (seed.sh).

  capture.py server PORT OUT FLAGS [odmr]
      A scripted SMTP server on 127.0.0.1:PORT for one client (swaks,
      smtp-source, fetchmail): it answers everything plausibly (EHLO with
      PIPELINING, DSN, ETRN, AUTH PLAIN LOGIN CRAM-MD5; with "odmr" AUTH
      CRAM-MD5 and ATRN, and ATRN gets 453) and records each recv() of
      the client as one segment. OUT (one file per session, OUT, OUT.2,
      ...) is fuzz_smtpd_session.c's input: two flag bytes (FLAGS, four
      hex digits) and the segments joined by NUL 0xFF. Prints "ready"
      once listening; ends after the client's session(s) (at most 30 s).

  capture.py client PORT OUT [auth]
      A client of a real server (smtp-sink) that says what the delivery
      client says (EHLO, [AUTH], MAIL, RCPT twice, DATA, the message,
      ETRN, QUIT), one command a write, and records what the server
      sends: OUT is fuzz_reply.c's client-mode input (flag byte 0x01 or,
      with auth, 0x03), OUT.reader the same bytes for the reader (0x00).
"""
import socket
import sys
import time

SEG = b'\0\xff'
LIMIT = 30.0


def ehlo_reply(odmr):
    ext = [b'capture.example']
    if odmr:
        ext += [b'ENHANCEDSTATUSCODES', b'AUTH CRAM-MD5', b'ATRN']
    else:
        ext += [b'PIPELINING', b'SIZE 10240000', b'8BITMIME', b'SMTPUTF8',
                b'ENHANCEDSTATUSCODES', b'DSN', b'ETRN',
                b'AUTH PLAIN LOGIN CRAM-MD5']
    return b''.join(b'250' + (b' ' if i == len(ext) - 1 else b'-') + e +
                    b'\r\n' for i, e in enumerate(ext))


class Session:
    """The scripted server's state for one connection."""

    def __init__(self, odmr):
        self.odmr = odmr
        self.state = 'cmd'
        self.auth_left = 0
        self.done = False

    def line(self, ln):
        if self.state == 'data':
            if ln == b'.':
                self.state = 'cmd'
                return b'250 2.0.0 Ok: queued as CAPTURE\r\n'
            return b''
        if self.state == 'auth':
            self.auth_left -= 1
            if ln == b'*':
                self.state = 'cmd'
                return b'501 5.7.0 cancelled\r\n'
            if self.auth_left > 0:
                return b'334 UGFzc3dvcmQ6\r\n'
            self.state = 'cmd'
            return b'235 2.7.0 Authentication successful\r\n'
        verb = ln.split(b' ', 1)[0].upper()
        arg = ln[len(verb) + 1:]
        if verb == b'EHLO':
            return ehlo_reply(self.odmr)
        if verb == b'HELO':
            return b'250 capture.example\r\n'
        if verb in (b'MAIL', b'RCPT', b'RSET', b'NOOP'):
            return b'250 2.0.0 Ok\r\n'
        if verb == b'DATA':
            self.state = 'data'
            return b'354 End data with <CR><LF>.<CR><LF>\r\n'
        if verb == b'AUTH':
            mech = arg.split(b' ')
            m = mech[0].upper()
            if m == b'PLAIN' and len(mech) > 1:
                return b'235 2.7.0 Authentication successful\r\n'
            self.state = 'auth'
            if m == b'PLAIN':
                self.auth_left = 1
                return b'334 \r\n'
            if m == b'LOGIN':
                self.auth_left = 2
                return b'334 VXNlcm5hbWU6\r\n'
            self.auth_left = 1
            return (b'334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9u'
                    b'Lm1jaS5uZXQ+\r\n')
        if verb == b'ETRN':
            return b'250 2.0.0 Queuing for node ' + arg + b' started\r\n'
        if verb == b'ATRN':
            return b'453 4.0.0 You have no mail\r\n'
        if verb == b'STARTTLS':
            return b'454 4.7.0 TLS not available\r\n'
        if verb == b'QUIT':
            self.done = True
            return b'221 2.0.0 Bye\r\n'
        return b'502 5.5.1 Error: command not recognized\r\n'


def serve_one(conn, odmr):
    """One session; its segments."""
    s = Session(odmr)
    segs = []
    buf = b''
    conn.settimeout(5)
    conn.sendall(b'220 capture.example ESMTP\r\n')
    end = time.time() + LIMIT
    while not s.done and time.time() < end:
        try:
            d = conn.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        segs.append(d)
        buf += d
        out = b''
        while b'\n' in buf and not s.done:
            ln, buf = buf.split(b'\n', 1)
            out += s.line(ln.rstrip(b'\r'))
        if out:
            conn.sendall(out)
    conn.close()
    return segs


def server(port, out, flags, odmr):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(('127.0.0.1', port))
    ls.listen(8)
    ls.settimeout(LIMIT)
    print('ready', flush=True)
    n = 0
    end = time.time() + LIMIT
    while time.time() < end:
        try:
            conn, _ = ls.accept()
        except socket.timeout:
            break
        segs = serve_one(conn, odmr)
        n += 1
        name = out if n == 1 else '%s.%d' % (out, n)
        with open(name, 'wb') as f:
            f.write(bytes.fromhex(flags) + SEG.join(segs))
        ls.settimeout(1.0)     # more sessions follow at once, or none
    ls.close()


def client(port, out, auth):
    c = socket.create_connection(('127.0.0.1', port), timeout=5)
    got = b''

    def reply():
        nonlocal got
        data = b''
        end = time.time() + 5
        # A reply ends with a line whose fourth byte is a space.
        while time.time() < end:
            try:
                d = c.recv(65536)
            except OSError:
                break
            if not d:
                break
            data += d
            lines = data.split(b'\r\n')
            if len(lines) > 1 and len(lines[-2]) >= 4 and \
                    lines[-2][3:4] == b' ':
                break
        got += data

    reply()
    cmds = [b'EHLO client.example']
    if auth:
        cmds.append(b'AUTH PLAIN AHUAcA==')
    cmds += [b'MAIL FROM:<s@fuzz.example> BODY=8BITMIME',
             b'RCPT TO:<a@relay.example> NOTIFY=FAILURE',
             b'RCPT TO:<b@relay.example>', b'DATA',
             b'Subject: x\r\n\r\n..dot\r\nbody\r\n.',
             b'ETRN fuzz.example', b'QUIT']
    for cmd in cmds:
        try:
            c.sendall(cmd + b'\r\n')
        except OSError:
            break           # the server hung up: what it sent is kept
        reply()
    c.close()
    with open(out, 'wb') as f:
        f.write((b'\x03' if auth else b'\x01') + got)
    with open(out + '.reader', 'wb') as f:
        f.write(b'\x00' + got)


def main():
    mode = sys.argv[1]
    if mode == 'server':
        server(int(sys.argv[2]), sys.argv[3], sys.argv[4],
               len(sys.argv) > 5 and sys.argv[5] == 'odmr')
    elif mode == 'client':
        client(int(sys.argv[2]), sys.argv[3],
               len(sys.argv) > 4 and sys.argv[4] == 'auth')
    else:
        sys.exit('usage: capture.py server|client ...')


if __name__ == '__main__':
    main()
