"""deliver_fail_inject.py - queue many messages fast, for
tests/integ/cases/310-deliver-failures.sh.

    deliver_fail_inject.py PORT N SESSIONS RCPT_FORMAT...

Sends N messages to posternd on 127.0.0.1:PORT over SESSIONS parallel SMTP
sessions (so that posternd's group commit shares the fsyncs). Message i
(1..N) goes to every RCPT_FORMAT with {i} replaced by i. Prints the number
of messages accepted; exits 1 if any was refused.
"""
import smtplib
import sys
import threading

port, n, nsess = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
fmts = sys.argv[4:]
done = [0]
lock = threading.Lock()


def worker(k):
    s = smtplib.SMTP("127.0.0.1", port, timeout=60)
    s.ehlo("inject.test.example")
    for i in range(k + 1, n + 1, nsess):
        rc = [f.replace("{i}", str(i)) for f in fmts]
        msg = ("From: <s@inject.test.example>\r\nTo: %s\r\n"
               "Subject: message %d\r\n\r\nbody of message %d\r\n"
               % (", ".join(rc), i, i))
        s.sendmail("s@inject.test.example", rc, msg)
        with lock:
            done[0] += 1
    s.quit()


ts = [threading.Thread(target=worker, args=(k,)) for k in range(nsess)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(done[0])
sys.exit(0 if done[0] == n else 1)
