#!/usr/bin/env python3
"""scripts/evtx-xml.py FILE.evtx [EVENTID…] prints the records of a Windows
event log file as the XML that EvtRender(EvtRenderEventXml) gives the agent,
one <Event> per line group, optionally only those with the given event ids.

It turned public EVTX samples into the agent's Security-log fixtures
(agent/internal/signal/sessions/testdata/win/README.md). Written from the
format's public description (Microsoft's MS-EVEN6 BinXml grammar; the EVTX
file, chunk and record headers as libyal's "Windows XML Event Log (EVTX)
format" documents them); it decodes what Security logs use and stops with an
error on anything else. Python 3 standard library only.
"""

import struct
import sys
import uuid
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape, quoteattr

CHUNK = 65536


class Chunk:
    def __init__(self, data):
        self.d = data
        self.templates = {}  # offset -> (body offset, body size)

    def name(self, off):
        # Name: next offset u32, hash u16, length u16 (chars), UTF-16LE, NUL.
        (n,) = struct.unpack_from("<H", self.d, off + 6)
        return self.d[off + 8 : off + 8 + 2 * n].decode("utf-16-le")


def filetime(v):
    return datetime(1601, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=v // 10)


def fmt_time(t, ticks):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%07dZ" % (ticks % 10**7)


def sid(b):
    rev, n = b[0], b[1]
    auth = int.from_bytes(b[2:8], "big")
    subs = struct.unpack_from("<%dI" % n, b, 8)
    return "S-%d-%d" % (rev, auth) + "".join("-%d" % s for s in subs)


class Raw(str):
    """Markup from a nested BinXml value: inserted as is, not escaped."""


def value(c, typ, b, off):
    """Renders a substitution value of type typ held in bytes b, at offset
    off of the chunk."""
    if typ == 0x00:
        return None
    if typ == 0x01:
        return b.decode("utf-16-le").rstrip("\x00")
    if typ == 0x02:
        return b.decode("latin-1").rstrip("\x00")
    if typ in (0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A):
        fmt = {3: "<b", 4: "<B", 5: "<h", 6: "<H", 7: "<i", 8: "<I", 9: "<q", 10: "<Q"}[typ]
        return str(struct.unpack(fmt, b)[0])
    if typ == 0x0D:
        return "true" if struct.unpack("<I", b[:4])[0] else "false"
    if typ == 0x0E:
        return b.hex().upper()
    if typ == 0x0F:
        return "{" + str(uuid.UUID(bytes_le=b)) + "}"
    if typ == 0x11:
        (v,) = struct.unpack("<Q", b)
        return fmt_time(filetime(v), v)
    if typ == 0x10:  # SizeT: a pointer-sized integer, shown as HexInt
        return "0x%x" % int.from_bytes(b, "little")
    if typ == 0x13:
        return sid(b)
    if typ == 0x14:
        return "0x%x" % struct.unpack("<I", b)[0]
    if typ == 0x15:
        return "0x%x" % struct.unpack("<Q", b)[0]
    if typ == 0x21:
        out = []
        Parser(c, off).parse(out, None)
        return Raw("".join(out))
    raise ValueError("value type 0x%02x" % typ)


class Parser:
    """Reads BinXml from buf (the chunk, or a value's bytes) at pos."""

    def __init__(self, c, pos):
        self.c, self.p, self.b = c, pos, c.d

    def u8(self):
        self.p += 1
        return self.b[self.p - 1]

    def u16(self):
        self.p += 2
        return struct.unpack_from("<H", self.b, self.p - 2)[0]

    def u32(self):
        self.p += 4
        return struct.unpack_from("<I", self.b, self.p - 4)[0]

    def name(self):
        off = self.u32()
        if off == self.p:
            (n,) = struct.unpack_from("<H", self.b, self.p + 6)
            self.p += 8 + 2 * n + 2
        return self.c.name(off)

    def parse(self, out, subs):
        """Parses tokens until EOF or the end of the enclosing element."""
        while True:
            tok = self.u8()
            t = tok & 0x0F
            if t == 0x00:  # EOF
                return
            if t == 0x0F:  # fragment header
                self.p += 3
            elif t == 0x0C:  # template instance
                self.template(out)
            elif t == 0x01:  # open start element
                self.element(tok, out, subs)
            elif t == 0x04:  # end element
                return "end"
            elif t in (0x05,):  # value text
                out.append(escape(self.text()))
            elif t in (0x0D, 0x0E):
                v = self.subst(subs)
                out.append(v if isinstance(v, Raw) else escape(v or ""))
            elif t == 0x08:  # character reference
                out.append("&#%d;" % self.u16())
            elif t == 0x09:  # entity reference
                out.append("&%s;" % self.name())
            elif t == 0x07:  # CDATA
                out.append("<![CDATA[%s]]>" % self.text(typed=False))
            else:
                raise ValueError("token 0x%02x at %d" % (tok, self.p - 1))

    def text(self, typed=True):
        if typed:
            typ = self.u8()
            if typ != 0x01:
                raise ValueError("value text of type 0x%02x" % typ)
        n = self.u16()
        s = self.b[self.p : self.p + 2 * n].decode("utf-16-le")
        self.p += 2 * n
        return s

    def subst(self, subs):
        idx = self.u16()
        self.u8()  # declared type
        return subs[idx] if subs is not None and idx < len(subs) else None

    def element(self, tok, out, subs):
        self.u16()  # dependency id
        self.u32()  # data size
        name = self.name()
        attrs = []
        if tok & 0x40:
            self.u32()  # attribute list size
            while True:
                at = self.b[self.p]
                if at & 0x0F != 0x06:
                    break
                self.p += 1
                an = self.name()
                parts, null = [], False
                while self.b[self.p] & 0x0F in (0x05, 0x0D, 0x0E, 0x08, 0x09):
                    vt = self.u8() & 0x0F
                    if vt == 0x05:
                        parts.append(self.text())
                    elif vt == 0x08:
                        parts.append(chr(self.u16()))
                    elif vt == 0x09:
                        parts.append("&%s;" % self.name())
                    else:
                        v = self.subst(subs)
                        null = null or (vt == 0x0E and v is None)
                        parts.append(v or "")
                # An attribute whose optional substitution is null is left
                # out, as EvtRender does.
                if not null:
                    attrs.append((an, "".join(parts)))
        close = self.u8()
        a = "".join(" %s=%s" % (n, quoteattr(v)) for n, v in attrs)
        if close == 0x03:  # close empty element
            out.append("<%s%s/>" % (name, a))
            return
        if close != 0x02:
            raise ValueError("close token 0x%02x" % close)
        inner = []
        if self.parse(inner, subs) != "end":
            raise ValueError("element %s not closed" % name)
        body = "".join(inner)
        out.append("<%s%s>%s</%s>" % (name, a, body, name) if body else "<%s%s></%s>" % (name, a, name))

    def template(self, out):
        self.u8()
        self.u32()  # template id
        off = self.u32()
        if off == self.p:  # defined here
            self.u32()  # next template
            self.p += 16  # GUID
            size = self.u32()
            body = self.p
            self.p += size
            self.c.templates[off] = (body, size)
        body, _ = self.c.templates.get(off, (off + 24, 0))
        n = self.u32()
        descs = [struct.unpack_from("<HBx", self.b, self.p + 4 * i) for i in range(n)]
        self.p += 4 * n
        subs = []
        for size, typ in descs:
            subs.append(value(self.c, typ, self.b[self.p : self.p + size], self.p))
            self.p += size
        t = Parser(self.c, body)
        t.parse(out, subs)


def records(path):
    data = open(path, "rb").read()
    if data[:8] != b"ElfFile\x00":
        raise ValueError("not an EVTX file")
    for off in range(4096, len(data) - CHUNK + 1, CHUNK):
        chunk = data[off : off + CHUNK]
        if chunk[:8] != b"ElfChnk\x00":
            continue
        c = Chunk(chunk)
        (free,) = struct.unpack_from("<I", chunk, 48)
        p = 512
        while p + 24 <= min(free, CHUNK):
            magic, size, rid, ts = struct.unpack_from("<IIQQ", chunk, p)
            if magic != 0x00002A2A or size < 28:
                break
            out = []
            try:
                Parser(c, p + 24).parse(out, None)
            except (ValueError, struct.error, UnicodeDecodeError, IndexError) as e:
                print("record %d: %s" % (rid, e), file=sys.stderr)
            else:
                yield rid, "".join(out)
            p += size


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    ids = set(sys.argv[2:])
    for _, xml in records(sys.argv[1]):
        start = xml.find("<EventID")
        eid = xml[xml.find(">", start) + 1 : xml.find("</EventID>")] if start >= 0 else ""
        if ids and eid not in ids:
            continue
        print(xml)


if __name__ == "__main__":
    main()
