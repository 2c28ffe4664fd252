"""idn_sink.py - a small SMTP sink for 920-idn.sh.

Usage: idn_sink.py IP PORT DIR [--utf8]

Offers 8BITMIME and ENHANCEDSTATUSCODES, and SMTPUTF8 only with --utf8
(Postfix's smtp-sink cannot be told to offer it). Each message is written
to DIR/N.msg as its MAIL and RCPT command lines, exactly as received
(bytes), then an empty line and the data. No PIPELINING: one command, one
reply.
"""
import os
import socketserver
import sys

IP, PORT, DIR = sys.argv[1], int(sys.argv[2]), sys.argv[3]
UTF8 = "--utf8" in sys.argv[4:]
COUNT = [0]


class Handler(socketserver.StreamRequestHandler):
    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        env = []
        self.reply("220 sink.test ESMTP")
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            cmd = line.rstrip(b"\r\n")
            verb = cmd[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                ext = ["sink.test", "8BITMIME"]
                if UTF8:
                    ext.append("SMTPUTF8")
                ext.append("ENHANCEDSTATUSCODES")
                if verb == b"HELO":
                    ext = ext[:1]
                for e in ext[:-1]:
                    self.wfile.write(b"250-" + e.encode() + b"\r\n")
                self.reply("250 " + ext[-1])
            elif verb == b"MAIL":
                env = [cmd]
                self.reply("250 2.1.0 Ok")
            elif verb == b"RCPT":
                env.append(cmd)
                self.reply("250 2.1.5 Ok")
            elif verb == b"DATA":
                self.reply("354 go")
                data = []
                while True:
                    d = self.rfile.readline(65536)
                    if not d or d == b".\r\n":
                        break
                    data.append(d)
                COUNT[0] += 1
                path = os.path.join(DIR, "%d.msg" % COUNT[0])
                with open(path + ".tmp", "wb") as f:
                    f.write(b"\r\n".join(env) + b"\r\n\r\n" + b"".join(data))
                os.rename(path + ".tmp", path)
                env = []
                self.reply("250 2.0.0 Ok: queued")
            elif verb == b"QUIT":
                self.reply("221 2.0.0 Bye")
                return
            elif verb in (b"RSET", b"NOOP"):
                env = []
                self.reply("250 2.0.0 Ok")
            else:
                self.reply("502 5.5.1 not here")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


os.makedirs(DIR, exist_ok=True)
Server((IP, PORT), Handler).serve_forever()
