package runner

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/config"
	"github.com/bonafide-sec/bonafide/agent/internal/notify"
	"github.com/bonafide-sec/bonafide/agent/internal/scan"
	"github.com/bonafide-sec/bonafide/agent/internal/spool"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
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

// TestNotifyPresenceOncePerCheck: a notice that does not validate is
// ignored; a valid one is remembered in the state dir (so shown once, even
// by another run) until its check expires; the file stays bounded.
func TestNotifyPresenceOncePerCheck(t *testing.T) {
	dir := t.TempDir()
	r := &Runner{Cfg: config.Config{StateDir: dir}, Log: slog.New(slog.DiscardHandler), notifier: &notify.Notifier{Root: t.TempDir()}}
	ctx := t.Context()
	soon := timestamppb.New(time.Now().Add(10 * time.Minute))
	for _, n := range []*agentv1.PresenceCheckNotice{
		{CheckId: "../../etc/passwd", ExpiresAt: soon},
		{CheckId: "0000000A-0000-4000-8000-000000000001", ExpiresAt: soon},
		{CheckId: "00000000-0000-4000-8000-000000000001"},
		{CheckId: "00000000-0000-4000-8000-000000000001", ExpiresAt: timestamppb.New(time.Now().Add(-time.Minute))},
		{CheckId: "00000000-0000-4000-8000-000000000001", ExpiresAt: timestamppb.New(time.Now().Add(48 * time.Hour))},
	} {
		r.notifyPresence(ctx, n)
	}
	r.notifying.Wait()
	if _, err := os.Stat(filepath.Join(dir, noticeFile)); !os.IsNotExist(err) {
		t.Fatalf("an invalid notice was taken: %v", err)
	}
	id := "00000000-0000-4000-8000-000000000001"
	if first, err := r.rememberNotice(id, soon.AsTime(), time.Now()); !first || err != nil {
		t.Fatalf("first notice: %v %v", first, err)
	}
	if first, err := (&Runner{Cfg: r.Cfg}).rememberNotice(id, soon.AsTime(), time.Now()); first || err != nil {
		t.Fatalf("second notice of the same check: %v %v", first, err)
	}
	// Past its expiry the check is forgotten; the file keeps maxNotices.
	if first, err := r.rememberNotice(id, soon.AsTime(), time.Now().Add(time.Hour)); !first || err != nil {
		t.Fatalf("after expiry: %v %v", first, err)
	}
	for i := range 2 * maxNotices {
		if _, err := r.rememberNotice(fmt.Sprintf("00000000-0000-4000-8000-%012d", i+2), soon.AsTime(), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, noticeFile)); strings.Count(string(b), "\n") != maxNotices {
		t.Fatalf("%d lines remembered", strings.Count(string(b), "\n"))
	}
}
