package sessions

import (
	"strings"
	"testing"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// wtmpdbSample is shaped exactly as wtmpdb's `last -j -w --time-format
// iso` prints (src/wtmpdb.c print_line/main_last): newest first, a boot
// entry, an open console session, an SSH session from abroad.
const wtmpdbSample = `{
   "entries": [
     { "user": "mkim",
       "tty": "pts/1",
       "hostname": "175.45.176.7",
       "login": "2025-11-20T02:00:00+0000",
       "logout": "2025-11-20T09:30:00+0000",
       "length": "07:30"
     },
     { "user": "mkim",
       "tty": "tty2",
       "hostname": "",
       "login": "2025-11-20T01:05:00+0000",
       "logout": "still logged in "
     },
     { "user": "reboot",
       "tty": "system boot",
       "hostname": "6.12.38+deb13-amd64",
       "login": "2025-11-20T01:00:00+0000",
       "logout": "still running "
     }
   ],
   "start": "2025-11-20T01:00:00+0000"
}
`

func TestParseWtmpdb(t *testing.T) {
	hist, next, err := parseWtmpdb([]byte(wtmpdbSample), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || next != "wtmpdb:1763604000:1" {
		t.Fatalf("%d sessions, cursor %q", len(hist), next)
	}
	con, ssh := hist[0], hist[1]
	if con.GetUser() != "mkim" || con.GetType() != agentv1.LoginSession_TYPE_CONSOLE || con.GetEndedAt() != nil {
		t.Errorf("console %v", con)
	}
	if ssh.GetType() != agentv1.LoginSession_TYPE_SSH || ssh.GetSourceAddress() != "175.45.176.7" ||
		ssh.GetEndedAt().AsTime().Hour() != 9 {
		t.Errorf("ssh %v", ssh)
	}
	// The next run sends nothing new, and keeps the cursor.
	again, next2, err := parseWtmpdb([]byte(wtmpdbSample), next)
	if err != nil || len(again) != 0 || next2 != next {
		t.Fatalf("second run: %v %q %v", again, next2, err)
	}
	// A new login in the same second as the last one is still sent.
	more := strings.Replace(wtmpdbSample, `"entries": [`, `"entries": [
     { "user": "ana", "tty": "pts/2", "hostname": "10.0.0.5", "login": "2025-11-20T02:00:00+0000", "logout": "still logged in " },`, 1)
	third, next3, err := parseWtmpdb([]byte(more), next)
	if err != nil || len(third) != 1 || third[0].GetUser() != "ana" || next3 != "wtmpdb:1763604000:2" {
		t.Fatalf("third run: %v %q %v", third, next3, err)
	}
	// Unescaped quotes make wtmpdb's output invalid JSON: an error.
	if _, _, err := parseWtmpdb([]byte(`{"entries":[{"user":"a"b"}]}`), ""); err == nil {
		t.Fatal("invalid JSON accepted")
	}
}

func FuzzParseWtmpdb(f *testing.F) {
	f.Add([]byte(wtmpdbSample), "")
	f.Add([]byte(wtmpdbSample), "wtmpdb:1763604000:1")
	f.Fuzz(func(t *testing.T, b []byte, cursor string) {
		parseWtmpdb(b, cursor)
	})
}
