package sessions

import (
	"bufio"
	"bytes"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// macOS last(1) prints, newest first,
//
//	user     tty      host     Www Mmm dd HH:MM <tail>
//
// where tail is "  still logged in", " - HH:MM  (dur)", " - shutdown
// (dur)", " - crash (dur)", "   gone - no logout" or nothing (reboot and
// shutdown pseudo-entries), dur being "HH:MM" or "D+HH:MM". The last line is
// "wtmp begins Www Mmm dd HH:MM". There is no year and no seconds; times
// are local.
var macLastLine = regexp.MustCompile(`^(\S+)\s+(\S+)\s+(?:(\S+)\s+)?(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([ \d]\d) (\d\d):(\d\d)(.*)$`)

var macLastEnd = regexp.MustCompile(`^\s*-\s+(?:(\d\d):(\d\d)|(shutdown|crash|down))\s+\((?:(\d+)\+)?(\d\d):(\d\d)\)\s*$`)

var macMonths = map[string]time.Month{
	"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6,
	"Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12,
}

var macWeekdays = map[string]time.Weekday{
	"Sun": 0, "Mon": 1, "Tue": 2, "Wed": 3, "Thu": 4, "Fri": 5, "Sat": 6,
}

// maxLastOutput bounds the `last` output parsed.
const maxLastOutput = 16 << 20

// macParseLast parses `last` output into sessions, oldest first. Reboot and
// shutdown pseudo-entries are skipped.
//
// Years are inferred: the newest line gets the latest year, not after now,
// in which that date falls on the printed weekday (looking back up to 28
// years; if none matches, the latest year not after now); each older line
// gets the latest such year whose date is not after the line above it.
// Sessions ended by "shutdown", "crash" or "down" end at start + duration;
// "gone - no logout" and "still logged in" leave the end unset. Key is
// the start in Unix seconds.
func macParseLast(out []byte, now time.Time, loc *time.Location) []session {
	if len(out) > maxLastOutput {
		out = out[:maxLastOutput]
	}
	var res []session
	upper := now.In(loc).Add(24 * time.Hour) // slack for clock/zone skew
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		line := strings.ToValidUTF8(sc.Text(), "\uFFFD")
		if strings.HasPrefix(line, "wtmp begins") {
			continue
		}
		m := macLastLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		user, tty, host, tail := m[1], m[2], m[3], m[9]
		day, _ := strconv.Atoi(strings.TrimSpace(m[6]))
		hh, _ := strconv.Atoi(m[7])
		mm, _ := strconv.Atoi(m[8])
		start, ok := macInferYear(macMonths[m[5]], day, hh, mm, macWeekdays[m[4]], upper, loc)
		if !ok {
			continue
		}
		upper = start
		if tty == "~" && (user == "reboot" || user == "shutdown") {
			continue
		}
		s := session{User: user, Line: tty, Host: host, Type: macClassify(tty, host), Start: start, Key: start.Unix()}
		if e := macLastEnd.FindStringSubmatch(tail); e != nil {
			days, _ := strconv.Atoi(e[4])
			dh, _ := strconv.Atoi(e[5])
			dm, _ := strconv.Atoi(e[6])
			if days > 100000 {
				days = 100000
			}
			dur := time.Duration(days)*24*time.Hour + time.Duration(dh)*time.Hour + time.Duration(dm)*time.Minute
			if e[3] != "" {
				s.End = start.Add(dur)
			} else {
				eh, _ := strconv.Atoi(e[1])
				em, _ := strconv.Atoi(e[2])
				// The end clock time on the day start + duration.
				d := start.Add(dur)
				end := time.Date(d.Year(), d.Month(), d.Day(), eh, em, 0, 0, loc)
				if end.Before(start) {
					end = end.AddDate(0, 0, 1)
				}
				s.End = end
			}
		}
		res = append(res, s)
	}
	// last prints newest first; return oldest first, keeping the order of
	// equal times reversed too.
	for i, j := 0, len(res)-1; i < j; i, j = i+1, j-1 {
		res[i], res[j] = res[j], res[i]
	}
	return res
}

// macInferYear finds the latest year in which month/day hh:mm is not after
// upper and falls on weekday; without a weekday match within 28 years, the
// latest year not after upper.
func macInferYear(month time.Month, day, hh, mm int, wd time.Weekday, upper time.Time, loc *time.Location) (time.Time, bool) {
	if month == 0 || day < 1 || day > 31 || hh > 23 || mm > 59 {
		return time.Time{}, false
	}
	var fallback time.Time
	for y := upper.Year(); y >= upper.Year()-28; y-- {
		t := time.Date(y, month, day, hh, mm, 0, 0, loc)
		if t.Month() != month || t.After(upper) {
			continue // Feb 29 in a non-leap year, or in the future
		}
		if fallback.IsZero() {
			fallback = t
		}
		if t.Weekday() == wd {
			return t, true
		}
	}
	return fallback, !fallback.IsZero()
}

// macLastCursor is "last:<unix seconds>:<n>": the newest login time sent
// and how many sessions with exactly that login time were sent (last has
// minute resolution, so several logins can share it).
type macLastCursor struct {
	Unix int64
	N    int
}

func (c macLastCursor) String() string {
	return "last:" + strconv.FormatInt(c.Unix, 10) + ":" + strconv.Itoa(c.N)
}

func macParseLastCursor(s string) (macLastCursor, bool) {
	rest, ok := strings.CutPrefix(s, "last:")
	if !ok {
		return macLastCursor{}, false
	}
	a, b, ok := strings.Cut(rest, ":")
	if !ok {
		return macLastCursor{}, false
	}
	u, err1 := strconv.ParseInt(a, 10, 64)
	n, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || n < 0 {
		return macLastCursor{}, false
	}
	return macLastCursor{Unix: u, N: n}, true
}

// macHistory selects the sessions (oldest first, as macParseLast returns
// them) logged in after cursor, at most MaxHistory (the newest), and the
// next cursor. Of the sessions logged in at exactly the cursor's minute,
// the first N in login order were sent before and are skipped.
func macHistory(all []session, cursor string) ([]session, string) {
	cur, has := macParseLastCursor(cursor)
	sort.SliceStable(all, func(i, j int) bool { return all[i].Key < all[j].Key })
	var out []session
	seenAtCur := 0
	for _, s := range all {
		if has {
			if s.Key < cur.Unix {
				continue
			}
			if s.Key == cur.Unix {
				if seenAtCur < cur.N {
					seenAtCur++
					continue
				}
			}
		}
		out = append(out, s)
	}
	if len(out) > MaxHistory {
		out = out[len(out)-MaxHistory:]
	}
	if len(all) == 0 {
		return out, cursor
	}
	newest := all[len(all)-1].Key
	n := 0
	for _, s := range all {
		if s.Key == newest {
			n++
		}
	}
	return out, macLastCursor{Unix: newest, N: n}.String()
}
