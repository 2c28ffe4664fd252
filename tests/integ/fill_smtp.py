"""fill_smtp.py - fill a queue through SMTP, and check what it kept.

  fill_smtp.py send HOST PORT OUTDIR TAG RCPT MAX [STOPFAIL [MINKB MAXKB]]
      Send up to MAX messages to RCPT over one connection (a new one when
      the server drops it), each with Message-ID <TAG-N@fill.test> and a
      body of MINKB..MAXKB (default 64..200) KiB of 76-octet CRLF lines,
      some led by a dot. A message answered 250 after its final dot is
      written to OUTDIR/TAG-N.eml exactly as sent (CRLF, not dot-stuffed);
      every reply is a line "TAG-N CODE TEXT" in OUTDIR/replies. Stops
      after STOPFAIL (default 3) refusals in a row. Prints "acked=N
      refused=N first_refusal=CODE TEXT".
  fill_smtp.py verify POSTERN OUTDIR
      Every OUTDIR/*.eml must be in the queue (`POSTERN queue --json`,
      `POSTERN show --raw ID`) exactly once, stored as one Received:
      field followed by the bytes sent. Prints "intact=N missing=N
      damaged=N twice=N" and the names of the bad ones.
  fill_smtp.py ehlo HOST PORT
      Exit 0 if the server greets and answers EHLO with 250.
"""
import glob
import json
import os
import random
import re
import smtplib
import subprocess
import sys


def body(tag, n, minkb, maxkb):
    rnd = random.Random("%s-%d" % (tag, n))
    size = rnd.randint(minkb * 1024, maxkb * 1024)
    head = ("From: fill@client.test\r\nTo: someone\r\n"
            "Subject: fill %s-%d\r\nMessage-ID: <%s-%d@fill.test>\r\n\r\n"
            % (tag, n, tag, n))
    lines = [head]
    got = len(head)
    i = 0
    while got < size:
        c = "%c" % (65 + rnd.randint(0, 25))
        line = ("." if i % 97 == 0 else "") + c * 74 + "\r\n"
        lines.append(line)
        got += len(line)
        i += 1
    lines.append("end %s-%d\r\n" % (tag, n))
    return "".join(lines).encode()


def send(host, port, outdir, tag, rcpt, nmax, stopfail, minkb, maxkb):
    os.makedirs(outdir, exist_ok=True)
    replies = open(os.path.join(outdir, "replies"), "a")
    s = None
    acked = refused = inrow = 0
    first = ""
    for n in range(nmax):
        name = "%s-%d" % (tag, n)
        msg = body(tag, n, minkb, maxkb)
        code, text = 0, ""
        try:
            if s is None:
                s = smtplib.SMTP(host, port, timeout=30)
                s.ehlo("fill.test")
            code, text = s.mail("fill@client.test")
            if code == 250:
                code, text = s.rcpt(rcpt)
            if code == 250:
                # smtplib dot-stuffs and sends CRLF as is.
                code, text = s.data(msg)
            else:
                s.rset()
        except (smtplib.SMTPException, OSError) as e:
            code, text = -1, str(e).encode()
            s = None
        text = text.decode(errors="replace") if isinstance(text, bytes) \
            else str(text)
        text = text.replace("\n", " ")
        replies.write("%s %d %s\n" % (name, code, text))
        replies.flush()
        if code == 250:
            with open(os.path.join(outdir, name + ".eml"), "wb") as f:
                f.write(msg)
            acked += 1
            inrow = 0
            continue
        refused += 1
        inrow += 1
        if not first:
            first = "%d %s" % (code, text)
        if inrow >= stopfail:
            break
    if s is not None:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            pass
    print("acked=%d refused=%d first_refusal=%s" % (acked, refused, first))


def verify(postern, outdir):
    out = subprocess.run([postern, "queue", "--json"], check=True,
                         capture_output=True).stdout
    stored = {}
    for line in out.decode().splitlines():
        if not line.strip():
            continue
        mid = json.loads(line)["id"]
        raw = subprocess.run([postern, "show", "--raw", mid], check=True,
                             capture_output=True).stdout
        m = re.search(rb"\r\nMessage-ID: <([^@>]+)@fill\.test>", raw)
        if m is None:
            continue
        stored.setdefault(m.group(1).decode(), []).append(raw)
    intact = missing = damaged = twice = 0
    bad = []
    for path in sorted(glob.glob(os.path.join(outdir, "*.eml"))):
        name = os.path.basename(path)[:-4]
        sent = open(path, "rb").read()
        raws = stored.get(name, [])
        if not raws:
            missing += 1
            bad.append("missing:" + name)
            continue
        if len(raws) > 1:
            twice += 1
            bad.append("twice:" + name)
        raw = raws[0]
        pre = raw[:len(raw) - len(sent)]
        # One Received: field (folded lines start with white space).
        if (not raw.endswith(sent) or not pre.startswith(b"Received: ") or
                re.search(rb"\r\n[^ \t]", pre[:-2])):
            damaged += 1
            bad.append("damaged:" + name)
            continue
        intact += 1
    print("intact=%d missing=%d damaged=%d twice=%d %s" %
          (intact, missing, damaged, twice, " ".join(bad[:10])))


def ehlo(host, port):
    try:
        s = smtplib.SMTP(host, port, timeout=10)
        code, _ = s.ehlo("probe.test")
        s.quit()
    except (smtplib.SMTPException, OSError):
        return 1
    return 0 if code == 250 else 1


def main():
    a = sys.argv[1:]
    if a and a[0] == "send" and len(a) >= 7:
        send(a[1], int(a[2]), a[3], a[4], a[5], int(a[6]),
             int(a[7]) if len(a) > 7 else 3,
             int(a[8]) if len(a) > 8 else 64,
             int(a[9]) if len(a) > 9 else 200)
    elif a and a[0] == "verify" and len(a) == 3:
        verify(a[1], a[2])
    elif a and a[0] == "ehlo" and len(a) == 3:
        sys.exit(ehlo(a[1], int(a[2])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
