package sessions

// Pure assembly of Windows login history from parsed Security events. It
// compiles and is tested on every OS.
//
// How events become sessions:
//
//   - 4624 with an interactive logon type opens a session keyed by
//     TargetLogonId: 2 (Interactive) and 11 (CachedInteractive) are
//     console logons, 10 (RemoteInteractive) and 12 (CachedRemoteInteractive)
//     are RDP, 7 (Unlock) and 13 (CachedUnlock) count as console unless
//     IpAddress is a non-loopback address, when they count as RDP (an RDP
//     client unlocking a locked session). Network (3), batch (4), service
//     (5) and other logon types are skipped, as are machine accounts
//     ("…$"), NT AUTHORITY accounts and the DWM-n / UMFD-n accounts that
//     Windows logs on for each session.
//   - An unlock (7, 13) or cached-interactive (11) logon of a user who
//     already has an open entry opens none: it is that session's unlock,
//     or a UAC credential prompt inside it (LogonProcessName CredPro,
//     consent.exe), and Windows logs it off again within the second. Real
//     logs show both (testdata/win/README.md): after an RDP reconnect the
//     unlock's two halves come from the client's address and from "-",
//     which counted as an RDP and a console session of zero length.
//   - A 4624 whose TargetLinkedLogonId names a session opened just before
//     by the same user is the other half of a split (elevated/filtered)
//     token logon and joins that session instead of opening another.
//   - 4634 and 4647 end the session with that logon ID.
//   - 4778 (session reconnected) starts a new entry on the existing logon
//     session: RDP, with ClientAddress and SessionName, or console when
//     SessionName is "Console" and the address is local (fast user
//     switching). It ends the previous entry of that logon ID if still
//     open. A 4778 that follows within winReconnectWindow an RDP 4624 of
//     the same user from the same address (the logon Windows records for
//     the reconnect's own authentication) is merged into that entry.
//   - 4779 (session disconnected) ends the current entry of that logon ID.
//
// Logoffs of sessions opened before the cursor are not seen again, so
// such sessions stay without ended_at in the history already sent.

import (
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

const (
	// winCursorPrefix starts a Windows history cursor: "evt:<EventRecordID>".
	winCursorPrefix = "evt:"
	// winReconnectWindow is how long after an RDP logon a 4778 of the same
	// user and address is taken as the same connection.
	winReconnectWindow = time.Minute
	// winLinkedWindow is how close the two halves of a split-token logon
	// must be.
	winLinkedWindow = 10 * time.Second
)

// winParseCursor reads "evt:<N>". ok is false for "" or anything else.
func winParseCursor(cursor string) (n uint64, ok bool) {
	s, found := strings.CutPrefix(cursor, winCursorPrefix)
	if !found {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// winFormatCursor writes a cursor for record n.
func winFormatCursor(n uint64) string {
	return winCursorPrefix + strconv.FormatUint(n, 10)
}

// winEntry is a history entry under construction.
type winEntry struct {
	s       *agentv1.LoginSession
	userKey string
	start   time.Time
	// logonID is the logon session the entry currently belongs to.
	logonID uint64
	// merged is set once a 4778 has been merged into the entry.
	merged bool
	ended  bool
}

// winSessions builds the login history from events after cursor. It
// returns at most MaxHistory entries, the newest, in the order they
// started, and the cursor after the newest event given (whatever its ID),
// or cursor itself when no event is newer.
func winSessions(events []winEvent, cursor string) ([]*agentv1.LoginSession, string) {
	after, ok := winParseCursor(cursor) // after is 0 when !ok
	newCursor := ""
	if ok {
		newCursor = cursor
	}
	evs := make([]winEvent, 0, len(events))
	var newest uint64
	for _, ev := range events {
		if ev.RecordID <= after {
			continue
		}
		evs = append(evs, ev)
		newest = max(newest, ev.RecordID)
	}
	if newest > 0 {
		newCursor = winFormatCursor(newest)
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].RecordID < evs[j].RecordID })

	var entries []*winEntry
	byLogon := make(map[uint64]*winEntry)
	open := make(map[string]int) // entries not ended, per user key
	end := func(e *winEntry, t time.Time) {
		if !e.ended {
			open[e.userKey]--
		}
		winEnd(e, t)
	}
	for _, ev := range evs {
		switch ev.EventID {
		case winEventLogon:
			typ, ok := winLogonSessionType(ev)
			if !ok || winSkipAccount(ev.User, ev.Domain) {
				continue
			}
			if e := byLogon[ev.LogonID]; e != nil && !e.ended && e.logonID == ev.LogonID {
				continue // the same logon recorded twice
			}
			if e := byLogon[ev.LinkedLogonID]; ev.LinkedLogonID != 0 && e != nil && !e.ended &&
				e.userKey == winUserKey(ev) && winWithin(e.start, ev.Time, winLinkedWindow) {
				byLogon[ev.LogonID] = e
				continue
			}
			if winReturnLogon(ev.LogonType) && open[winUserKey(ev)] > 0 {
				continue // an unlock or elevation inside an open session
			}
			e := &winEntry{
				s: &agentv1.LoginSession{
					User: winUserName(ev),
					Type: typ,
				},
				userKey: winUserKey(ev),
				start:   ev.Time,
				logonID: ev.LogonID,
			}
			if typ == agentv1.LoginSession_TYPE_REMOTE_DESKTOP {
				e.s.SourceAddress = winRemoteAddress(ev.Address, ev.Workstation)
			}
			if !ev.Time.IsZero() {
				e.s.StartedAt = timestamppb.New(ev.Time)
			}
			entries = append(entries, e)
			byLogon[ev.LogonID] = e
			open[e.userKey]++

		case winEventLogoff, winEventUserLogoff, winEventDisconnect:
			e := byLogon[ev.LogonID]
			if e == nil || e.ended {
				continue
			}
			if e.merged && e.logonID != ev.LogonID {
				// The logoff of the reconnect's own authentication
				// logon; the session goes on.
				continue
			}
			end(e, ev.Time)

		case winEventReconnect:
			if winSkipAccount(ev.User, ev.Domain) {
				continue
			}
			console := strings.EqualFold(ev.SessionName, "Console") && winLocalAddress(ev.Address)
			typ := agentv1.LoginSession_TYPE_REMOTE_DESKTOP
			addr := winRemoteAddress(ev.Address, ev.Workstation)
			if console {
				typ = agentv1.LoginSession_TYPE_CONSOLE
				addr = ""
			}
			key := winUserKey(ev)
			if prev := byLogon[ev.LogonID]; prev != nil && !prev.ended && prev.logonID == ev.LogonID {
				end(prev, ev.Time)
			}
			if e := winFindReconnectLogon(entries, key, typ, addr, ev.Time); e != nil {
				e.merged = true
				if e.ended {
					open[e.userKey]++
				}
				e.ended = false
				e.s.EndedAt = nil
				e.s.Terminal = ev.SessionName
				delete(byLogon, e.logonID)
				e.logonID = ev.LogonID
				byLogon[ev.LogonID] = e
				continue
			}
			e := &winEntry{
				s: &agentv1.LoginSession{
					User:          winUserName(ev),
					Type:          typ,
					SourceAddress: addr,
					Terminal:      ev.SessionName,
				},
				userKey: key,
				start:   ev.Time,
				logonID: ev.LogonID,
				merged:  true,
			}
			if !ev.Time.IsZero() {
				e.s.StartedAt = timestamppb.New(ev.Time)
			}
			entries = append(entries, e)
			byLogon[ev.LogonID] = e
			open[key]++
		}
	}

	if len(entries) > MaxHistory {
		entries = entries[len(entries)-MaxHistory:]
	}
	out := make([]*agentv1.LoginSession, len(entries))
	for i, e := range entries {
		out[i] = e.s
	}
	return out, newCursor
}

// winFindReconnectLogon finds the RDP logon a 4778 belongs to: the
// newest entry of the same user, type and address, opened by a 4624
// within winReconnectWindow before t and not merged yet.
func winFindReconnectLogon(entries []*winEntry, key string, typ agentv1.LoginSession_Type, addr string, t time.Time) *winEntry {
	if typ != agentv1.LoginSession_TYPE_REMOTE_DESKTOP {
		return nil
	}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.merged || e.userKey != key || e.s.GetType() != typ || e.s.GetSourceAddress() != addr {
			continue
		}
		if !e.start.IsZero() && !t.IsZero() && !t.Before(e.start) && t.Sub(e.start) <= winReconnectWindow {
			return e
		}
	}
	return nil
}

// winReturnLogon reports the logon types Windows also records inside a
// session already open: unlocks and cached-credential prompts.
func winReturnLogon(logonType int) bool {
	switch logonType {
	case winLogonUnlock, winLogonCachedUnlock, winLogonCachedInteractive:
		return true
	}
	return false
}

// winEnd closes an entry at t.
func winEnd(e *winEntry, t time.Time) {
	e.ended = true
	if !t.IsZero() {
		e.s.EndedAt = timestamppb.New(t)
	}
}

// winWithin reports whether b is no more than d after a (or equal).
func winWithin(a, b time.Time, d time.Duration) bool {
	if a.IsZero() || b.IsZero() {
		return false
	}
	diff := b.Sub(a)
	return diff >= 0 && diff <= d
}

// winLogonSessionType maps a 4624 logon type to a session type; ok is
// false for logon types that are not a person logging on.
func winLogonSessionType(ev winEvent) (agentv1.LoginSession_Type, bool) {
	switch ev.LogonType {
	case winLogonInteractive, winLogonCachedInteractive:
		return agentv1.LoginSession_TYPE_CONSOLE, true
	case winLogonRemoteInteractive, winLogonCachedRemote:
		return agentv1.LoginSession_TYPE_REMOTE_DESKTOP, true
	case winLogonUnlock, winLogonCachedUnlock:
		if winLocalAddress(ev.Address) {
			return agentv1.LoginSession_TYPE_CONSOLE, true
		}
		return agentv1.LoginSession_TYPE_REMOTE_DESKTOP, true
	}
	return agentv1.LoginSession_TYPE_UNSPECIFIED, false
}

// winSkipAccount reports accounts that are not people: machine accounts,
// NT AUTHORITY\SYSTEM and friends, and the per-session Desktop Window
// Manager and User-Mode Font Driver accounts.
func winSkipAccount(user, domain string) bool {
	u := strings.ToUpper(user)
	d := strings.ToUpper(domain)
	switch {
	case u == "":
		return true
	case strings.HasSuffix(u, "$"):
		return true
	case strings.HasPrefix(u, "DWM-"), strings.HasPrefix(u, "UMFD-"):
		return true
	case d == "NT AUTHORITY", d == "WINDOW MANAGER", d == "FONT DRIVER HOST":
		return true
	case u == "SYSTEM", u == "LOCAL SERVICE", u == "NETWORK SERVICE", u == "ANONYMOUS LOGON":
		return true
	}
	return false
}

// winUserName is "DOMAIN\user", or "user" when the domain is empty.
func winUserName(ev winEvent) string {
	if ev.Domain == "" {
		return ev.User
	}
	return ev.Domain + `\` + ev.User
}

// winUserKey compares accounts case-insensitively, as Windows does.
func winUserKey(ev winEvent) string {
	return strings.ToLower(winUserName(ev))
}

// winLocalAddress reports an address that means "this machine": empty,
// loopback, or the words the log writes for a local client.
func winLocalAddress(addr string) bool {
	switch strings.ToUpper(strings.TrimSpace(addr)) {
	case "", "-", "LOCAL", "UNKNOWN":
		return true
	}
	if ip, err := netip.ParseAddr(addr); err == nil {
		return ip.IsLoopback() || ip.IsUnspecified()
	}
	return false
}

// winRemoteAddress is the source address of a remote session: the
// address unless it is local, else the client's host name, else "".
func winRemoteAddress(addr, workstation string) string {
	if !winLocalAddress(addr) {
		if ip, err := netip.ParseAddr(addr); err == nil {
			return ip.Unmap().String()
		}
		return addr
	}
	if !winLocalAddress(workstation) {
		return workstation
	}
	return ""
}
