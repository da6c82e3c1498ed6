package sessions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Bounds on what the agent reads from untrusted files.
const (
	// maxWtmpBytes is how much of the end of wtmp is parsed (~87,000
	// records). Older records are ignored.
	maxWtmpBytes = 32 << 20
	// maxUtmpBytes bounds run/utmp, which has one slot per terminal.
	maxUtmpBytes = 4 << 20
	// maxLogindSessions bounds the number of logind session files read.
	maxLogindSessions = 1000
)

// Paths relative to the root.
const (
	linuxWtmp        = "var/log/wtmp"
	linuxWtmpRotated = "var/log/wtmp.1"
	linuxLogindDir   = "run/systemd/sessions"
)

var linuxUtmpPaths = []string{"run/utmp", "var/run/utmp"}

func collectLinuxRoot(ctx context.Context, root, cursor string) (*agentv1.Sessions, error) {
	return collectLinuxFS(ctx, os.DirFS(root), cursor)
}

// collectLinuxFS reads current sessions (logind, else utmp) and the wtmp
// history after cursor from fsys, a Linux root.
func collectLinuxFS(ctx context.Context, fsys fs.FS, cursor string) (*agentv1.Sessions, error) {
	out := &agentv1.Sessions{}
	cur, err := linuxCurrent(ctx, fsys)
	if err != nil {
		return nil, err
	}
	for _, s := range cur {
		out.Current = append(out.Current, s.proto())
	}
	hist, next, err := linuxHistory(ctx, fsys, cursor)
	if err != nil {
		return nil, err
	}
	for _, s := range hist {
		out.History = append(out.History, s.proto())
	}
	out.HistoryCursor = next
	return out, nil
}

// linuxCurrent lists open sessions from logind's state files, or, when
// run/systemd/sessions does not exist (no systemd), from utmp.
func linuxCurrent(ctx context.Context, fsys fs.FS) ([]session, error) {
	ents, err := fs.ReadDir(fsys, linuxLogindDir)
	if err == nil {
		var out []session
		n := 0
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			name := e.Name()
			// Session state files are regular files named by the session
			// ID; "<id>.ref" are FIFOs.
			if !e.Type().IsRegular() || strings.Contains(name, ".") {
				continue
			}
			if n++; n > maxLogindSessions {
				break
			}
			data, err := readFileLimit(fsys, path.Join(linuxLogindDir, name), maxLogindFile)
			if err != nil {
				continue
			}
			ls := parseLogindSession(name, data)
			if !ls.isUserSession() || ls.State == "closing" {
				continue
			}
			out = append(out, ls.toSession())
		}
		sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
		return out, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sessions: %s: %w", linuxLogindDir, err)
	}
	for _, p := range linuxUtmpPaths {
		data, err := readFileLimit(fsys, p, maxUtmpBytes)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("sessions: %s: %w", p, err)
		}
		return currentFromUtmp(parseUtmp(data, 0)), nil
	}
	return nil, nil
}

// wtmpCursor is the history position "wtmp:<inode>:<offset>": the byte
// offset just past the last record read, in the file with that inode.
type wtmpCursor struct {
	Inode  uint64
	Offset int64
}

func (c wtmpCursor) String() string {
	return "wtmp:" + strconv.FormatUint(c.Inode, 10) + ":" + strconv.FormatInt(c.Offset, 10)
}

// parseWtmpCursor accepts "wtmp:<inode>:<offset>"; anything else (another
// OS's cursor, garbage) means "from the start".
func parseWtmpCursor(s string) (wtmpCursor, bool) {
	rest, ok := strings.CutPrefix(s, "wtmp:")
	if !ok {
		return wtmpCursor{}, false
	}
	a, b, ok := strings.Cut(rest, ":")
	if !ok {
		return wtmpCursor{}, false
	}
	ino, err1 := strconv.ParseUint(a, 10, 64)
	off, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || off < 0 || off%utmpRecordSize != 0 {
		return wtmpCursor{}, false
	}
	return wtmpCursor{Inode: ino, Offset: off}, true
}

// linuxHistory returns the sessions whose login record lies after the
// cursor, oldest first, at most MaxHistory (the newest), and the next
// cursor. Each session is sent once, when its login is first seen; ended_at
// is set if the logout was already recorded then.
//
// The whole file (its last maxWtmpBytes) is paired each time so that a
// logout is matched with a login read earlier. If the inode differs from
// the cursor's (logrotate moved the file) or the file is shorter than the
// cursor offset (truncated), the history restarts at offset 0; the rest of
// the old file is taken from var/log/wtmp.1 when that file has the
// cursor's inode.
func linuxHistory(ctx context.Context, fsys fs.FS, cursor string) ([]session, string, error) {
	cur, hasCur := parseWtmpCursor(cursor)
	data, base, ino, err := readTail(fsys, linuxWtmp, maxWtmpBytes, utmpRecordSize)
	if errors.Is(err, fs.ErrNotExist) {
		// No wtmp (e.g. wtmpdb-only systems): keep the cursor as it was.
		return nil, cursor, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("sessions: %s: %w", linuxWtmp, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	end := base + int64(len(data)/utmpRecordSize*utmpRecordSize)
	next := wtmpCursor{Inode: ino, Offset: end}.String()

	from := int64(0)
	var out []session
	if hasCur {
		switch {
		case cur.Inode == ino && cur.Offset <= end:
			from = cur.Offset
		default:
			// Rotated or truncated: finish the old file if it is still there.
			out = append(out, rotatedTail(fsys, cur)...)
		}
	}
	for _, s := range pairUtmp(parseUtmp(data, base)) {
		if s.Key >= from {
			out = append(out, s)
		}
	}
	if len(out) > MaxHistory {
		out = out[len(out)-MaxHistory:]
	}
	return out, next, nil
}

// rotatedTail returns the sessions of var/log/wtmp.1 logged in at or after
// cur.Offset when that file is the one the cursor pointed into.
func rotatedTail(fsys fs.FS, cur wtmpCursor) []session {
	data, base, ino, err := readTail(fsys, linuxWtmpRotated, maxWtmpBytes, utmpRecordSize)
	if err != nil || ino == 0 || ino != cur.Inode {
		return nil
	}
	var out []session
	for _, s := range pairUtmp(parseUtmp(data, base)) {
		if s.Key >= cur.Offset {
			out = append(out, s)
		}
	}
	return out
}

// readFileLimit reads at most max bytes of name.
func readFileLimit(fsys fs.FS, name string, max int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

// readTail reads the last max bytes of name (fewer if it is shorter),
// starting at a multiple of rec, and reports the offset of the first byte
// read and the file's inode (0 where unknown).
func readTail(fsys fs.FS, name string, max, rec int64) (data []byte, base int64, inode uint64, err error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, 0, fmt.Errorf("not a regular file")
	}
	inode = fileInode(fi)
	size := fi.Size()
	if size > max {
		base = size - max
		base += (rec - base%rec) % rec
	}
	if base > 0 {
		if s, ok := f.(io.Seeker); ok {
			if _, err := s.Seek(base, io.SeekStart); err != nil {
				return nil, 0, 0, err
			}
		} else if _, err := io.CopyN(io.Discard, f, base); err != nil {
			return nil, 0, 0, err
		}
	}
	data, err = io.ReadAll(io.LimitReader(f, size-base))
	return data, base, inode, err
}
