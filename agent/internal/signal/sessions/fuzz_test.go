package sessions

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func seed(f *testing.F, names ...string) {
	for _, n := range names {
		if b, err := os.ReadFile(filepath.Join("testdata", n)); err == nil {
			f.Add(b)
		}
	}
}

func FuzzParseUtmp(f *testing.F) {
	seed(f, "wtmp-grr.bin", "wtmp-plaso.bin", "utmp-grr.bin")
	f.Fuzz(func(t *testing.T, data []byte) {
		recs := parseUtmp(data, 0)
		for _, s := range pairUtmp(recs) {
			_ = s.proto()
		}
		currentFromUtmp(recs)
	})
}

func FuzzMacParseUtmpx(f *testing.F) {
	seed(f, "utmpx-macos-plaso.bin")
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, s := range macCurrentFromUtmpx(macParseUtmpx(data)) {
			_ = s.proto()
		}
	})
}

func FuzzMacParseLast(f *testing.F) {
	seed(f, "last-osx-10.14.6-jc.txt")
	f.Add([]byte("a b c Mon Feb 29 23:59 - crash (99999+23:59)\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		all := macParseLast(data, time.Date(2020, 3, 1, 0, 0, 0, 0, time.UTC), time.UTC)
		h, c := macHistory(all, "last:1:1")
		macHistory(all, c)
		for _, s := range h {
			_ = s.proto()
		}
	})
}

func FuzzParseLogindSession(f *testing.F) {
	f.Add([]byte(logindGraphical))
	f.Add([]byte(logindSSH))
	f.Add([]byte("REMOTE_HOST=\\x4\\377\\\nREALTIME=99999999999999999999\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := parseLogindSession("1", data)
		_ = s.toSession().proto()
	})
}

func FuzzCursors(f *testing.F) {
	f.Add("wtmp:12:384")
	f.Add("last:1:2")
	f.Fuzz(func(t *testing.T, s string) {
		parseWtmpCursor(s)
		macParseLastCursor(s)
	})
}
