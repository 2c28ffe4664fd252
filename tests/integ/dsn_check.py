#!/usr/bin/env python3
"""dsn_check.py - check a delivery status notification field by field.

A DSN (RFC 6522 multipart/report; report-type=delivery-status, RFC 3464
fields, RFC 3461 rules) is parsed with Python's email package and checked
against what the caller expects: structure and part order, content types,
the required fields present and well formed, each recipient's Status and
Action, ENVID and ORCPT echoed, what was returned (RET, bounce_return, the
size cap), line lengths and line ends, and that nothing hostile escaped
into a header field.

CLI (one "ok NAME: check" or "not ok NAME: check: why" line per check; exit
status 1 when any check failed):

    dsn_check.py FILE [--name NAME] [--kind failure|delay|success]
        [--to ADDR] [--reporting-mta HOST] [--double]
        [--rcpt ADDR=STATUS]... [--ret full|headers] [--capped]
        [--envid VALUE] [--orcpt ADDR=VALUE]... [--remote-mta ADDR=HOST]...
        [--diag ADDR=TEXT]... [--eightbit] [--global]
        [--body-marker TEXT] [--text TEXT]... [--no-field NAME]...

Importable: check_dsn(raw_bytes, **expect) returns a list of
(ok, check, detail) tuples, with the same keywords as the options
(rcpt=[(addr, status)], orcpt={addr: value}, remote_mta={addr: host},
diag={addr: text}, text=[...], no_field=[...]).
"""
import argparse
import email
import email.header
import email.policy
import email.utils
import re
import sys
from email.parser import BytesParser, HeaderParser

STATUS_RE = re.compile(r"^([245])\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})$")
ACTIONS = {"failed", "delayed", "delivered", "relayed", "expanded"}
KIND_ACTIONS = {
    "failure": {"failed"},
    "delay": {"delayed"},
    "success": {"delivered", "relayed", "expanded"},
}
ONCE_TOP = ("Date", "From", "To", "Subject", "Message-ID", "MIME-Version",
            "Content-Type", "Auto-Submitted")


class Checker:
    def __init__(self):
        self.results = []

    def check(self, name, cond, detail=""):
        self.results.append((bool(cond), name, "" if cond else detail))
        return bool(cond)


def _s(v):
    """A header value as text (compat32 gives a Header for 8-bit ones)."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    out = []
    for b, cs in email.header.decode_header(v):
        if isinstance(b, bytes):
            if cs in (None, "unknown-8bit"):
                cs = "utf-8"
            b = b.decode(cs, "replace")
        out.append(b)
    return "".join(out)


def _unfold(v):
    return re.sub(r"\r?\n[ \t]+", " ", _s(v)).strip()


def _date_ok(v):
    try:
        d = email.utils.parsedate_to_datetime(_unfold(v))
    except (TypeError, ValueError, IndexError):
        return False
    return d is not None and d.tzinfo is not None


def _blocks(text):
    """The header-field blocks of a delivery-status body (RFC 3464 §2.1:
    groups separated by blank lines), each parsed by the email package
    into a Message (fields in order, duplicates kept)."""
    text = text.replace("\r\n", "\n")
    out = []
    for chunk in re.split(r"\n[ \t]*\n", text):
        if chunk.strip() == "":
            continue
        out.append(HeaderParser(policy=email.policy.compat32).parsestr(
            chunk.strip("\n") + "\n\n"))
    return out


def _raw_parts(raw, boundary):
    """The three bodies between the boundary lines of the raw message, as
    bytes, and how many delimiter and close lines there were."""
    lines = raw.split(b"\r\n")
    delim = b"--" + boundary.encode("ascii", "replace")
    parts, cur, ndelim, nclose, inpart = [], None, 0, 0, False
    for ln in lines:
        if ln == delim or ln.rstrip(b" \t") == delim:
            ndelim += 1
            if cur is not None:
                parts.append(b"\r\n".join(cur))
            cur, inpart = [], True
            continue
        if ln.rstrip(b" \t") == delim + b"--":
            nclose += 1
            if cur is not None:
                parts.append(b"\r\n".join(cur))
            cur, inpart = None, False
            continue
        if inpart:
            cur.append(ln)
    bodies = []
    for p in parts:
        i = p.find(b"\r\n\r\n")
        bodies.append(p[i + 4:] if i >= 0 else b"")
    return bodies, ndelim, nclose


def check_dsn(raw, name="dsn", kind="failure", to=None, reporting_mta=None,
              double=False, rcpt=None, ret=None, capped=False, envid=None,
              orcpt=None, remote_mta=None, diag=None, eightbit=False,
              global_=False, body_marker=None, text=None, no_field=None):
    """Check one DSN (bytes); returns [(ok, check, detail)]."""
    c = Checker()
    rcpt = rcpt or []
    orcpt = orcpt or {}
    remote_mta = remote_mta or {}
    diag = diag or {}

    # --- Bytes: line ends, lengths, 8-bit. --------------------------
    bad = None
    for i, b in enumerate(raw):
        if b == 0:
            bad = "NUL at %d" % i
            break
        if b == 13 and raw[i + 1:i + 2] != b"\n":
            bad = "bare CR at %d" % i
            break
        if b == 10 and (i == 0 or raw[i - 1] != 13):
            bad = "bare LF at %d" % i
            break
    c.check("crlf line ends, no NUL", bad is None, bad)
    longest = max((len(ln) for ln in raw.split(b"\r\n")), default=0)
    c.check("lines <= 998 octets", longest <= 998, "a line of %d" % longest)
    c.check("ends with CRLF", raw.endswith(b"\r\n"), "no final CRLF")
    has8 = any(b >= 0x80 for b in raw)
    if not eightbit and not global_:
        c.check("7-bit", not has8, "8-bit bytes in a 7-bit DSN")
    for f in no_field or []:
        pat = re.compile(rb"(?im)^" + re.escape(f.encode()) + rb"[ \t]*:")
        c.check("no %s: field" % f, not pat.search(raw),
                "a line starts with %s:" % f)

    msg = BytesParser(policy=email.policy.compat32).parsebytes(raw)

    # --- Top-level header. ------------------------------------------
    for h in ONCE_TOP:
        n = len(msg.get_all(h) or [])
        c.check("one %s:" % h, n == 1, "%d of them" % n)
    c.check("Received: present", msg.get("Received") is not None, "none")
    c.check("MIME-Version 1.0", _unfold(msg.get("MIME-Version")) == "1.0",
            msg.get("MIME-Version"))
    c.check("content type multipart/report",
            msg.get_content_type() == "multipart/report",
            msg.get_content_type())
    c.check("report-type=delivery-status",
            (msg.get_param("report-type") or "").lower() ==
            "delivery-status", msg.get_param("report-type"))
    boundary = msg.get_boundary()
    c.check("boundary given, <= 70 chars",
            boundary is not None and 0 < len(boundary) <= 70, boundary)
    frm = email.utils.parseaddr(_unfold(msg.get("From")))[1]
    c.check("From: MAILER-DAEMON@",
            frm.lower().startswith("mailer-daemon@"), frm)
    if reporting_mta:
        c.check("From: host", frm.lower().endswith("@" + reporting_mta),
                frm)
    to_hdr = _unfold(msg.get("To"))
    if to is not None:
        c.check("To: the return path", to_hdr == "<%s>" % to,
                "%r, want <%s>" % (to_hdr, to))
    c.check("Subject: present", _unfold(msg.get("Subject")) != "", "empty")
    if double:
        c.check("Subject: postmaster copy",
                "postmaster" in _unfold(msg.get("Subject")).lower(),
                msg.get("Subject"))
    c.check("Date: RFC 5322", _date_ok(msg.get("Date")), msg.get("Date"))
    c.check("Message-ID: <x@y>",
            re.match(r"^<[^<>@\s]+@[^<>@\s]+>$",
                     _unfold(msg.get("Message-ID"))) is not None,
            msg.get("Message-ID"))
    c.check("Auto-Submitted: auto-replied",
            _unfold(msg.get("Auto-Submitted")).lower() == "auto-replied",
            msg.get("Auto-Submitted"))
    c.check("top-level parse has no defects", not msg.defects,
            repr(msg.defects))

    # --- Structure. -------------------------------------------------
    parts = msg.get_payload() if msg.is_multipart() else []
    if not c.check("three parts", len(parts) == 3,
                   "%d parts" % len(parts)):
        return c.results
    want_ds = "message/global-delivery-status" if global_ and \
        parts[1].get_content_type() != "message/delivery-status" \
        else "message/delivery-status"
    if ret == "full":
        want_ret = "message/global" if global_ else "message/rfc822"
    elif ret == "headers":
        want_ret = "message/global-headers" if global_ else \
            "text/rfc822-headers"
    else:
        want_ret = None
    c.check("part 1 text/plain", parts[0].get_content_type() ==
            "text/plain", parts[0].get_content_type())
    c.check("part 2 " + want_ds, parts[1].get_content_type() == want_ds,
            parts[1].get_content_type())
    if want_ret:
        c.check("part 3 " + want_ret, parts[2].get_content_type() ==
                want_ret, parts[2].get_content_type())
    else:
        c.check("part 3 returned content", parts[2].get_content_type() in (
            "message/rfc822", "text/rfc822-headers", "message/global",
            "message/global-headers"), parts[2].get_content_type())
    bodies, ndelim, nclose = _raw_parts(raw, boundary or "")
    c.check("three delimiters and one close", ndelim == 3 and nclose == 1,
            "%d delimiters, %d closes" % (ndelim, nclose))
    if len(bodies) != 3:
        return c.results
    bb = (boundary or "").encode()
    c.check("boundary not in any part",
            all(bb not in b for b in bodies), "found inside a part")
    for i, p in enumerate(parts):
        c.check("part %d parse has no defects" % (i + 1), not p.defects,
                repr(p.defects))

    # --- Part 1: the words. -----------------------------------------
    charset = (parts[0].get_content_charset() or "us-ascii").lower()
    c.check("text charset", charset in ("us-ascii", "utf-8"), charset)
    words = bodies[0].decode("utf-8", "replace")
    flat = re.sub(r"\s+", " ", words).strip()
    m = re.match(r"^(.*?[.!?])(\s|$)", flat)
    first = m.group(1) if m else flat
    for a, _ in rcpt:
        c.check("first sentence names <%s>" % a, "<%s>" % a in first,
                "first sentence: %r" % first[:300])
    for s in text or []:
        c.check("text says %r" % s, s in flat, "not in the text")
    if capped:
        c.check("text says the size cap applied",
                "larger than the limit" in flat, "no note")

    # --- Part 2: the fields. ----------------------------------------
    ds = bodies[1].decode("utf-8" if global_ else "ascii", "replace")
    if not global_:
        c.check("delivery-status is 7-bit",
                all(b < 0x80 for b in bodies[1]), "8-bit bytes")
    blocks = _blocks(ds)
    if want_ds == "message/delivery-status":
        pl = parts[1].get_payload()
        c.check("email package sees the same groups",
                isinstance(pl, list) and len(pl) == len(blocks),
                "%s vs %d" % (type(pl).__name__, len(blocks)))
    if not c.check("per-message and per-recipient groups",
                   len(blocks) >= 2, "%d groups" % len(blocks)):
        return c.results
    pm, groups = blocks[0], blocks[1:]
    for f in ("Reporting-MTA", "Original-Envelope-Id", "Arrival-Date",
              "Received-From-MTA", "DSN-Gateway"):
        n = len(pm.get_all(f) or [])
        c.check("per-message %s at most once" % f, n <= 1, "%d" % n)
    rm = _unfold(pm.get("Reporting-MTA"))
    c.check("Reporting-MTA: dns; host",
            re.match(r"^dns;\s*[A-Za-z0-9.-]+$", rm) is not None, rm)
    if reporting_mta:
        c.check("Reporting-MTA is " + reporting_mta,
                re.sub(r"^dns;\s*", "", rm) == reporting_mta, rm)
    if pm.get("Arrival-Date") is not None:
        c.check("Arrival-Date well formed", _date_ok(pm["Arrival-Date"]),
                pm["Arrival-Date"])
    if pm.get("Received-From-MTA") is not None:
        c.check("Received-From-MTA: dns; host",
                re.match(r"^dns;\s*\S+$",
                         _unfold(pm["Received-From-MTA"])) is not None,
                pm["Received-From-MTA"])
    oei = pm.get("Original-Envelope-Id")
    if envid is not None:
        c.check("Original-Envelope-Id is ENVID (decoded)",
                _unfold(oei) == envid, "%r, want %r" % (oei, envid))
    else:
        c.check("no Original-Envelope-Id without ENVID", oei is None, oei)
    for g in groups:
        if g.get("Reporting-MTA") is not None:
            c.check("per-recipient group has no Reporting-MTA", False,
                    "misplaced per-message field")
    if rcpt:
        c.check("one group per recipient", len(groups) == len(rcpt),
                "%d groups, %d recipients" % (len(groups), len(rcpt)))
    for i, g in enumerate(groups):
        fr = _unfold(g.get("Final-Recipient"))
        fm = re.match(r"^(rfc822|utf-8);\s*(.+)$", fr, re.I)
        addr = fm.group(2) if fm else fr
        tag = "<%s>" % addr
        for f in ("Final-Recipient", "Action", "Status", "Original-Recipient",
                  "Remote-MTA", "Diagnostic-Code", "Last-Attempt-Date",
                  "Will-Retry-Until"):
            n = len(g.get_all(f) or [])
            c.check("%s %s at most once" % (tag, f), n <= 1, "%d" % n)
        c.check("%s Final-Recipient: type; addr" % tag, fm is not None, fr)
        if i < len(rcpt):
            c.check("recipient %d is %s" % (i + 1, rcpt[i][0]),
                    addr == rcpt[i][0], "got %r" % addr)
        act = _unfold(g.get("Action")).lower()
        c.check("%s Action valid" % tag, act in ACTIONS, act)
        c.check("%s Action fits a %s notice" % (tag, kind),
                act in KIND_ACTIONS.get(kind, ACTIONS), act)
        st = _unfold(g.get("Status"))
        sm = STATUS_RE.match(st)
        c.check("%s Status x.y.z, no leading zeros" % tag, sm is not None,
                st)
        if sm:
            cls = sm.group(1)
            okcls = {"failed": "45", "delayed": "4", "delivered": "2",
                     "relayed": "2", "expanded": "2"}.get(act, "245")
            c.check("%s Status class fits Action" % tag, cls in okcls,
                    "%s with %s" % (st, act))
        if i < len(rcpt) and rcpt[i][1]:
            c.check("%s Status is %s" % (tag, rcpt[i][1]),
                    st == rcpt[i][1], "got %s" % st)
        orr = g.get("Original-Recipient")
        if addr in orcpt:
            c.check("%s Original-Recipient from ORCPT" % tag,
                    _unfold(orr) == orcpt[addr],
                    "%r, want %r" % (orr, orcpt[addr]))
        else:
            c.check("%s no Original-Recipient without ORCPT" % tag,
                    orr is None, orr)
        rmta = g.get("Remote-MTA")
        if rmta is not None:
            c.check("%s Remote-MTA: dns; host" % tag,
                    re.match(r"^dns;\s*\S+$", _unfold(rmta)) is not None,
                    rmta)
        if addr in remote_mta:
            c.check("%s Remote-MTA is %s" % (tag, remote_mta[addr]),
                    re.sub(r"^dns;\s*", "", _unfold(rmta)) ==
                    remote_mta[addr], rmta)
        dc = g.get("Diagnostic-Code")
        if dc is not None:
            dm = re.match(r"^smtp;\s*([2-5][0-9][0-9])([ -].*)?$",
                          _unfold(dc), re.S | re.I)
            xm = re.match(r"^x-[a-z0-9-]+;\s*\S", _unfold(dc), re.I)
            c.check("%s Diagnostic-Code: smtp; reply (or X-type)" % tag,
                    dm is not None or xm is not None, dc)
            if dm and act == "failed" and kind == "failure":
                c.check("%s reply is a 4xx/5xx" % tag,
                        dm.group(1)[0] in "45", dc)
        if addr in diag:
            c.check("%s Diagnostic-Code has %r" % (tag, diag[addr]),
                    dc is not None and diag[addr] in _unfold(dc), dc)
        for f in ("Last-Attempt-Date", "Will-Retry-Until"):
            if g.get(f) is not None:
                c.check("%s %s well formed" % (tag, f), _date_ok(g[f]),
                        g[f])
        if g.get("Will-Retry-Until") is not None:
            c.check("%s Will-Retry-Until only when delayed" % tag,
                    act == "delayed", act)

    # --- Part 3: what came back. ------------------------------------
    p3 = parts[2]
    cte = (p3.get("Content-Transfer-Encoding") or "7bit").strip().lower()
    if eightbit:
        c.check("returned part says 8bit", cte == "8bit", cte)
        c.check("top level says 8bit", (msg.get(
            "Content-Transfer-Encoding") or "").strip().lower() == "8bit",
            msg.get("Content-Transfer-Encoding"))
    elif not global_:
        c.check("returned part 7bit", cte in ("7bit",), cte)
    if p3.get_content_maintype() == "message" and \
            p3.get_content_type() in ("message/rfc822", "message/global"):
        inner = p3.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else None
        c.check("returned message has a header",
                inner is not None and len(inner.keys()) > 0, "empty")
    else:
        hdr = bodies[2].decode("utf-8", "replace").rstrip("\r\n")
        ok = hdr != "" and all(
            re.match(r"^([!-9;-~]+:|[ \t])", ln)
            for ln in hdr.split("\r\n") if ln != "")
        c.check("returned headers are header lines", ok,
                "a line is no header field")
    if body_marker is not None:
        found = body_marker.encode() in bodies[2]
        if ret == "full":
            c.check("the body is returned", found, "marker missing")
        elif ret == "headers":
            c.check("the body is not returned",
                    body_marker.encode() not in raw, "marker found")
    return c.results


def _pairs(vals, opt):
    out = []
    for v in vals or []:
        if "=" not in v:
            raise SystemExit("%s wants ADDR=VALUE: %r" % (opt, v))
        a, b = v.rsplit("=", 1) if opt == "--rcpt" else v.split("=", 1)
        out.append((a, b))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--name")
    ap.add_argument("--kind", default="failure",
                    choices=("failure", "delay", "success"))
    ap.add_argument("--to")
    ap.add_argument("--reporting-mta")
    ap.add_argument("--double", action="store_true")
    ap.add_argument("--rcpt", action="append")
    ap.add_argument("--ret", choices=("full", "headers"))
    ap.add_argument("--capped", action="store_true")
    ap.add_argument("--envid")
    ap.add_argument("--orcpt", action="append")
    ap.add_argument("--remote-mta", action="append")
    ap.add_argument("--diag", action="append")
    ap.add_argument("--eightbit", action="store_true")
    ap.add_argument("--global", dest="global_", action="store_true")
    ap.add_argument("--body-marker")
    ap.add_argument("--text", action="append")
    ap.add_argument("--no-field", action="append")
    a = ap.parse_args(argv)
    name = a.name or a.file.rsplit("/", 1)[-1]
    try:
        with open(a.file, "rb") as f:
            raw = f.read()
    except OSError as e:
        print("not ok %s: read: %s" % (name, e))
        return 1
    res = check_dsn(
        raw, name=name, kind=a.kind, to=a.to,
        reporting_mta=a.reporting_mta, double=a.double,
        rcpt=_pairs(a.rcpt, "--rcpt"), ret=a.ret, capped=a.capped,
        envid=a.envid, orcpt=dict(_pairs(a.orcpt, "--orcpt")),
        remote_mta=dict(_pairs(a.remote_mta, "--remote-mta")),
        diag=dict(_pairs(a.diag, "--diag")), eightbit=a.eightbit,
        global_=a.global_, body_marker=a.body_marker, text=a.text,
        no_field=a.no_field)
    failed = 0
    for ok, check, detail in res:
        if ok:
            print("ok %s: %s" % (name, check))
        else:
            failed += 1
            print("not ok %s: %s: %s" % (name, check, detail))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
