package sessions

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// wtmpdb (Debian 13, openSUSE: Y2038-safe login records in SQLite at
// /var/lib/wtmpdb/wtmp.db) is read through its own tool, since the agent
// has no SQLite reader: `wtmpdb last -j -w --time-format iso` prints
//
//	{ "entries": [ { "user": …, "tty": …, "hostname": …, "login": ISO,
//	                 "logout": ISO | "still logged in " | "crash", … } ],
//	  "start": ISO }
//
// newest first, times as strftime "%FT%T%z" (format from wtmpdb's
// src/wtmpdb.c, print_line and main_last). wtmpdb does not escape the
// strings it prints, so a name with a quote makes the output invalid
// JSON: that is an error, not a guess.

const wtmpdbTime = "2006-01-02T15:04:05-0700"

// wtmpdbArgs are the arguments of the wtmpdb run.
var wtmpdbArgs = []string{"last", "-j", "-w", "--time-format", "iso"}

type wtmpdbOutput struct {
	Entries []struct {
		User     string `json:"user"`
		TTY      string `json:"tty"`
		Hostname string `json:"hostname"`
		Login    string `json:"login"`
		Logout   string `json:"logout"`
	} `json:"entries"`
}

// wtmpdbCursor is "wtmpdb:<unix seconds>:<n>": the newest login time sent
// and how many sessions with exactly that login second were sent.
func wtmpdbCursor(t time.Time, n int) string {
	return "wtmpdb:" + strconv.FormatInt(t.Unix(), 10) + ":" + strconv.Itoa(n)
}

// parseWtmpdb turns wtmpdb's JSON into the sessions after cursor (oldest
// first, at most MaxHistory, the newest) and the next cursor. Boot and
// shutdown pseudo-entries are skipped.
func parseWtmpdb(b []byte, cursor string) ([]*agentv1.LoginSession, string, error) {
	var out wtmpdbOutput
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, cursor, fmt.Errorf("wtmpdb last: %w", err)
	}
	var after int64 = -1
	skip := 0
	if rest, ok := strings.CutPrefix(cursor, "wtmpdb:"); ok {
		a, n, _ := strings.Cut(rest, ":")
		if v, err := strconv.ParseInt(a, 10, 64); err == nil {
			after = v
			skip, _ = strconv.Atoi(n)
		}
	}
	var all []session
	// wtmpdb lists newest first; walk oldest first so that logins within
	// one second keep their order through the stable sort below.
	for i := len(out.Entries) - 1; i >= 0; i-- {
		e := out.Entries[i]
		if e.User == "reboot" || e.User == "soft-reboot" || e.User == "shutdown" ||
			e.TTY == "system boot" || e.TTY == "system down" {
			continue
		}
		start, err := time.Parse(wtmpdbTime, e.Login)
		if err != nil {
			continue
		}
		r := utmpRecord{Line: e.TTY, Host: e.Hostname, User: e.User}
		host, typ := classifyUtmp(r)
		s := session{User: e.User, Line: e.TTY, Host: host, Type: typ, Start: start}
		if end, err := time.Parse(wtmpdbTime, strings.TrimSpace(e.Logout)); err == nil {
			s.End = end
		}
		all = append(all, s)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Start.Before(all[j].Start) })
	var hist []*agentv1.LoginSession
	idx, prev := 0, int64(-1) // idx: 1-based position within its login second
	for _, s := range all {
		sec := s.Start.Unix()
		if sec != prev {
			idx, prev = 0, sec
		}
		idx++
		if sec < after || sec == after && idx <= skip {
			continue // sent before
		}
		hist = append(hist, s.proto())
	}
	if len(hist) == 0 {
		return nil, cursor, nil
	}
	next := wtmpdbCursor(all[len(all)-1].Start, idx)
	if len(hist) > MaxHistory {
		hist = hist[len(hist)-MaxHistory:]
	}
	return hist, next, nil
}
