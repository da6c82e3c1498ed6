package store_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// TestCheckpointer: the SQLite writer leaves its write-ahead log to the
// checkpointer (its own automatic checkpoint waits for 10,000 pages), which
// copies what was committed into the database file while the store is open:
// here the migrations' tables, and then a later commit's rows.
func TestCheckpointer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bonafide.db")
	st := storetest.Open(t, path)
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	grows := func(past int64) int64 {
		t.Helper()
		// A liveness wait, not a timing: the checkpointer looks every
		// 100 ms.
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if n := size(); n > past {
				return n
			}
		}
		t.Fatalf("the database file stayed at %d bytes: the log was not copied into it", past)
		return 0
	}
	migrated := grows(64 << 10)
	for i := range 300 {
		if _, _, err := st.CreateSecret(t.Context(), "checkpoint "+string(rune('a'+i%26))); err != nil {
			t.Fatal(err)
		}
	}
	grows(migrated)
}
