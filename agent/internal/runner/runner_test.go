package runner

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/scan"
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
