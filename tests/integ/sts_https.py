"""sts_https.py - the HTTPS side of MTA-STS for tests/integ/cases/910-mta-sts.sh.

    sts_https.py IP PORT CERT KEY DIR LOG

Serves GET /.well-known/mta-sts.txt over TLS on IP:PORT with CERT (a PEM
chain) and KEY, answering for the Host header H from the files in DIR:
    H            the policy body, 200, text/plain
    H.ctype      (optional) another Content-Type to send
    H.redirect   (optional) a 301 to this URL instead
Anything else is a 404. One line per request goes to LOG, flushed:
    GET H PATH STATUS
and "READY" once it listens.
"""
import http.server
import os
import ssl
import sys

ip, port, cert, key, root, logpath = sys.argv[1:7]
logf = open(logpath, "a", buffering=1)


class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        base = os.path.join(root, os.path.basename(host)) if host else ""
        status = 404
        body = b"not found\n"
        ctype = "text/plain"
        extra = []
        if self.path == "/.well-known/mta-sts.txt" and base:
            if os.path.exists(base + ".redirect"):
                status = 301
                with open(base + ".redirect") as f:
                    extra.append(("Location", f.read().strip()))
                body = b""
            elif os.path.exists(base):
                status = 200
                with open(base, "rb") as f:
                    body = f.read()
                if os.path.exists(base + ".ctype"):
                    with open(base + ".ctype") as f:
                        ctype = f.read().strip()
        logf.write("GET %s %s %d\n" % (host, self.path, status))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


srv = http.server.ThreadingHTTPServer((ip, int(port)), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
logf.write("READY\n")
srv.serve_forever()
