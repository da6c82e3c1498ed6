package remoteaccess

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// macPSLstartLayout is ps(1)'s lstart column in the C locale: strftime
// "%c", e.g. "Mon Nov  3 21:29:36 2026" (the day is space-padded; the
// parser joins the five fields with single spaces first).
const macPSLstartLayout = "Mon Jan 2 15:04:05 2006"

// macMaxLine bounds one line of ps or netstat output.
const macMaxLine = 1 << 20

// parseMacPS parses `ps -axww -o pid= -o uid= -o lstart= -o comm=` (one
// -o per keyword: BSD ps may read "=…" as the rest of the argument) run with
// LC_ALL=C. comm is last because it may contain spaces (on macOS it is the
// executable path, e.g. "/Applications/Google Chrome.app/…"), so it is the
// rest of the line after the five lstart fields. Start times are read in
// loc (ps prints local time). Malformed lines are skipped; the uid is
// returned in User (the caller may resolve it to a name).
func parseMacPS(b []byte, loc *time.Location) ([]Process, error) {
	if loc == nil {
		loc = time.UTC
	}
	var procs []Process
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), macMaxLine)
	for sc.Scan() {
		rest := sc.Text()
		var f [7]string
		ok := true
		for i := range f {
			if f[i], rest, ok = macNextField(rest); !ok {
				break
			}
		}
		if !ok {
			continue
		}
		comm := strings.TrimSpace(rest)
		pid, err := strconv.ParseInt(f[0], 10, 32)
		if err != nil || pid < 0 || comm == "" {
			continue
		}
		if _, err := strconv.ParseUint(f[1], 10, 32); err != nil {
			continue
		}
		p := Process{PID: int32(pid), User: f[1], Name: comm}
		if t, err := time.ParseInLocation(macPSLstartLayout, strings.Join(f[2:7], " "), loc); err == nil {
			p.Started = t
		}
		if strings.HasPrefix(comm, "/") {
			p.Path = comm
			p.Name = path.Base(comm)
		}
		procs = append(procs, p)
	}
	if err := sc.Err(); err != nil {
		return procs, fmt.Errorf("parse ps output: %w", err)
	}
	return procs, nil
}

// parseMacPSArgs parses `ps -axww -o pid= -o args=`: the pid, then the whole
// command line as ps prints it (arguments joined by single spaces, so
// arguments that themselves contain spaces cannot be told apart).
func parseMacPSArgs(b []byte) (map[int32]string, error) {
	args := make(map[int32]string)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), macMaxLine)
	for sc.Scan() {
		f, rest, ok := macNextField(sc.Text())
		if !ok {
			continue
		}
		pid, err := strconv.ParseInt(f, 10, 32)
		if err != nil || pid < 0 {
			continue
		}
		args[int32(pid)] = strings.TrimSpace(rest)
	}
	if err := sc.Err(); err != nil {
		return args, fmt.Errorf("parse ps args output: %w", err)
	}
	return args, nil
}

// splitMacArgs turns a ps args string into argv. When it starts with the
// executable path (which may contain spaces) that path is argv[0] whole;
// the rest is split on white space.
func splitMacArgs(args, exe string) []string {
	args = strings.TrimSpace(args)
	if args == "" {
		return nil
	}
	if exe != "" && strings.HasPrefix(args, exe) && (len(args) == len(exe) || args[len(exe)] == ' ') {
		return append([]string{exe}, strings.Fields(args[len(exe):])...)
	}
	return strings.Fields(args)
}

// macNextField returns the first white-space-delimited field of s and the
// text after it.
func macNextField(s string) (field, rest string, ok bool) {
	s = strings.TrimLeft(s, " \t")
	if s == "" {
		return "", "", false
	}
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, "", true
	}
	return s[:i], s[i:], true
}
