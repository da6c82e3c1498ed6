#!/usr/bin/env python3
"""Regenerates agent/internal/signal/display/testdata/linuxhw/edid.tsv.gz, the
real-EDID corpus of TestRealEDIDCorpus, from a checkout of
https://github.com/linuxhw/EDID (CC BY 4.0).

usage: scripts/edid-corpus.py /path/to/linuxhw/EDID > edid.tsv && gzip -9n edid.tsv

It keeps, from the Digital and Analog trees: every EDID whose manufacturer id
or 32-bit serial the KVM heuristics look at (TSB, LNX, SPD, HJW, serial
0x88888800) or whose model a KVM copies (PHLC233, ACR0565, AUS2487, DEL2013);
a fixed quarter (by the MD5 file name) of those whose monitor name says TV
or projector; and a fixed 1-in-128 sample of the rest. One line per EDID: the path in
linuxhw/EDID, a tab, the EDID in hex.
"""
import os, re, sys

KEEP_MFG = {"TSB", "LNX", "SPD", "HJW"}
KEEP_MODEL = {"PHLC233", "ACR0565", "AUS2487", "DEL2013"}
TVISH = re.compile(r"TV|PROJ|BEAMER|EPSON|BENQ PJ|OPTOMA|VIEWSONIC PJ|ACER PJ", re.I)

def edid_hex(text):
    m = re.search(r"EDID \(hex\):\s*\n((?:[0-9a-f]{32}\n)+)", text)
    if m:
        return m.group(1).replace("\n", "")
    m = re.search(r"edid-decode \(hex\):\s*\n((?:\n|(?:[0-9a-f]{2} ){15}[0-9a-f]{2}\n)+)", text)
    return re.sub(r"\s", "", m.group(1)) if m else None

def name(b):
    for i in range(54, 126, 18):
        d = b[i:i + 18]
        if len(d) == 18 and d[0] == 0 and d[1] == 0 and d[3] == 0xFC:
            return d[5:18].split(b"\n")[0].decode("latin1")
    return ""

root = sys.argv[1]
for typ in ("Digital", "Analog"):
    for dirpath, _, files in sorted(os.walk(os.path.join(root, typ))):
        for f in sorted(files):
            if not re.fullmatch(r"[A-F0-9]{12}", f):
                continue
            path = os.path.join(dirpath, f)
            h = edid_hex(open(path, encoding="latin1").read())
            if not h or len(h) < 256:
                continue
            b = bytes.fromhex(h)
            v = b[8] << 8 | b[9]
            mfg = "".join(chr((v >> s & 31) + 64) for s in (10, 5, 0))
            model = "%s%04X" % (mfg, b[11] << 8 | b[10])
            serial = int.from_bytes(b[12:16], "little")
            n = int(f, 16)
            keep = (mfg in KEEP_MFG or model in KEEP_MODEL or serial == 0x88888800
                    or TVISH.search(name(b)) and n % 4 == 0 or n % 128 == 0)
            if keep:
                print(os.path.relpath(path, root) + "\t" + h)
