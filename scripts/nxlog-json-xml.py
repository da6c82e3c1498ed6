#!/usr/bin/env python3
"""scripts/nxlog-json-xml.py [--tz-offset ±HH:MM] [--number-from N] FILE.json RECORD…

prints Security-log records of a JSON-lines event dump (one JSON object per
line, as NXLog's im_msvistalog and similar shippers write them: the event's
System values and its EventData fields side by side in one object) as the
XML that EvtRender(EvtRenderEventXml) gives the agent, one <Event> per line,
in the order the RECORDs are named.

It turned OTRF Security-Datasets records into the agent's Security-log
fixtures (agent/internal/signal/sessions/testdata/win/README.md).

A RECORD is the record's RecordNumber, or, for dumps without one, its
1-based line number in the file prefixed with "L" (L17); such records get
the EventRecordID N, N+1, … in the order given (--number-from, default 1).

The time is TimeCreated when the record has it (UTC), else EventTime, which
NXLog writes in its host's local time without a zone: --tz-offset names
that zone's offset from UTC (it is the difference between EventReceivedTime
and the shipper's UTC @timestamp). Such times have whole seconds only.

Nothing is invented: System elements the record does not hold (Level when
only a severity is given, Security) are left out, and so are EventData
fields it lacks. EventData fields are written in the order of the event's
documented schema (Microsoft's pages for 4624 version 2, 4634, 4647, 4778
and 4779, the order EvtRender gives); other events are refused. Python 3
standard library only.
"""

import json
import sys
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape, quoteattr

NS = "http://schemas.microsoft.com/win/2004/08/events/event"

FIELDS = {
    4624: "SubjectUserSid SubjectUserName SubjectDomainName SubjectLogonId TargetUserSid "
    "TargetUserName TargetDomainName TargetLogonId LogonType LogonProcessName "
    "AuthenticationPackageName WorkstationName LogonGuid TransmittedServices LmPackageName "
    "KeyLength ProcessId ProcessName IpAddress IpPort ImpersonationLevel RestrictedAdminMode "
    "TargetOutboundUserName TargetOutboundDomainName VirtualAccount TargetLinkedLogonId "
    "ElevatedToken",
    4634: "TargetUserSid TargetUserName TargetDomainName TargetLogonId LogonType",
    4647: "TargetUserSid TargetUserName TargetDomainName TargetLogonId",
    4778: "AccountName AccountDomain LogonID SessionName ClientName ClientAddress",
    4779: "AccountName AccountDomain LogonID SessionName ClientName ClientAddress",
}


def system_time(e, offset):
    if "TimeCreated" in e:
        t = datetime.strptime(e["TimeCreated"], "%Y-%m-%dT%H:%M:%S.%fZ")
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)
    if offset is None:
        sys.exit("record has no TimeCreated: give --tz-offset for its EventTime")
    t = datetime.strptime(e["EventTime"], "%Y-%m-%d %H:%M:%S") - offset
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def keywords(v):
    if isinstance(v, int):
        return "0x%x" % (v & (1 << 64) - 1)
    return v.lower()


def render(e, record_id, offset):
    eid = int(e["EventID"])
    if eid not in FIELDS:
        sys.exit("event %d: no schema here" % eid)
    s = ['<Provider Name=%s Guid=%s/>' % (quoteattr(e["SourceName"]), quoteattr(e["ProviderGuid"].lower()))]
    s.append("<EventID>%d</EventID>" % eid)
    if "Version" in e:
        s.append("<Version>%s</Version>" % e["Version"])
    if "Level" in e:
        s.append("<Level>%s</Level>" % escape(str(e["Level"])))
    s.append("<Task>%s</Task>" % e["Task"])
    if "OpcodeValue" in e:
        s.append("<Opcode>%s</Opcode>" % e["OpcodeValue"])
    s.append("<Keywords>%s</Keywords>" % keywords(e["Keywords"]))
    s.append('<TimeCreated SystemTime="%s"/>' % system_time(e, offset))
    s.append("<EventRecordID>%d</EventRecordID>" % record_id)
    if "ActivityID" in e:
        s.append("<Correlation ActivityID=%s/>" % quoteattr(e["ActivityID"].lower()))
    if "ExecutionProcessID" in e:
        s.append('<Execution ProcessID="%s" ThreadID="%s"/>' % (e["ExecutionProcessID"], e["ThreadID"]))
    s.append("<Channel>%s</Channel>" % escape(e["Channel"]))
    s.append("<Computer>%s</Computer>" % escape(e["Hostname"]))
    data = "".join(
        "<Data Name=%s>%s</Data>" % (quoteattr(n), escape(str(e[n]))) for n in FIELDS[eid].split() if n in e
    )
    return '<Event xmlns="%s"><System>%s</System><EventData>%s</EventData></Event>' % (NS, "".join(s), data)


def main():
    args = sys.argv[1:]
    offset, number = None, 1
    while args and args[0].startswith("--"):
        flag, val = args[0], args[1]
        args = args[2:]
        if flag == "--tz-offset":
            sign = -1 if val.startswith("-") else 1
            h, m = val.lstrip("+-").split(":")
            offset = sign * timedelta(hours=int(h), minutes=int(m))
        elif flag == "--number-from":
            number = int(val)
        else:
            sys.exit(__doc__)
    if len(args) < 2:
        sys.exit(__doc__)
    by_record, by_line = {}, {}
    with open(args[0], encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if '"EventID":4' not in line.replace(" ", ""):
                continue
            e = json.loads(line)
            if "RecordNumber" in e:
                by_record.setdefault(str(e["RecordNumber"]), []).append(e)
            by_line["L%d" % n] = e
    for r in args[1:]:
        if r.startswith("L"):
            print(render(by_line[r], number, offset))
            number += 1
            continue
        found = by_record.get(r, [])
        if len(found) != 1:
            sys.exit("record %s: %d matches (several hosts share record numbers: name it by line)" % (r, len(found)))
        print(render(found[0], int(r), offset))


if __name__ == "__main__":
    main()
