package runner

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/config"
	"github.com/bonafide-sec/bonafide/agent/internal/scan"
	"github.com/bonafide-sec/bonafide/agent/internal/spool"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func TestIntervalPrecedence(t *testing.T) {
	if got := interval(time.Second, time.Minute, time.Hour); got != time.Second {
		t.Errorf("local override: %v", got)
	}
	if got := interval(0, time.Minute, time.Hour); got != time.Minute {
		t.Errorf("collector setting: %v", got)
	}
	if got := interval(0, 0, time.Hour); got != time.Hour {
		t.Errorf("default: %v", got)
	}
}

func TestUseCatalogs(t *testing.T) {
	embedded, err := policies.RemoteAccess(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), scanner: &scan.Scanner{Catalog: embedded}}
	small := []byte("tools:\n  - id: anydesk\n    name: AnyDesk\n    category: remote_desktop\n    sources: [https://example.org/anydesk]\n    linux: {processes: [anydesk]}\n")
	r.useCatalogs([]*agentv1.Catalog{{Name: "remote_access", Version: "v2", Content: small}})
	if len(r.scanner.Catalog.Tools) != 1 {
		t.Fatalf("catalog from the collector not used: %d tools", len(r.scanner.Catalog.Tools))
	}
	r.useCatalogs([]*agentv1.Catalog{{Name: "remote_access", Version: "v3", Content: []byte("tools: [{id: BAD}]")}})
	if len(r.scanner.Catalog.Tools) != 1 {
		t.Fatal("a broken catalog replaced the working one")
	}
}

// TestQueueSnapshotKeepsCursorWithoutSessions: a snapshot whose sessions
// signal failed (or was cut off by the scan deadline) leaves the
// login-history position where it was, so the history is not sent again.
func TestQueueSnapshotKeepsCursorWithoutSessions(t *testing.T) {
	dir := t.TempDir()
	sp, err := spool.Open(filepath.Join(dir, "spool.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	r := &Runner{Cfg: config.Config{StateDir: dir}, spool: sp, scanner: &scan.Scanner{SessionsCursor: "c1"}}
	if err := r.queueSnapshot(&agentv1.HostSnapshot{}, ""); err != nil {
		t.Fatal(err)
	}
	if r.scanner.SessionsCursor != "c1" {
		t.Fatalf("cursor %q after a snapshot without sessions", r.scanner.SessionsCursor)
	}
	if err := r.queueSnapshot(&agentv1.HostSnapshot{Sessions: &agentv1.Sessions{HistoryCursor: "c2"}}, ""); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, cursorFile)); r.scanner.SessionsCursor != "c2" || string(b) != "c2\n" {
		t.Fatalf("cursor %q, file %q", r.scanner.SessionsCursor, b)
	}
}
