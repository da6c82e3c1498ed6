package detect

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

const sanctionRule = `rules:
  - id: tv
    title: TeamViewer
    severity: high
    description: TeamViewer present and not sanctioned
    condition: snapshot.remote_access.tools.exists(t, t.tool_id == "teamviewer" && !(t.tool_id in device.sanctioned_tools))
    tests:
      - {name: fires, facts: {now: 2026-01-01T00:00:00Z, snapshot: {remote_access: {tools: [{tool_id: teamviewer}]}}}, fires: true}
      - {name: quiet, facts: {now: 2026-01-01T00:00:00Z, snapshot: {}}, fires: false}
`

func TestSanctionedAllowlist(t *testing.T) {
	fsys := fstest.MapFS{
		"rules/tv.yaml": {Data: []byte(sanctionRule)},
		"allowlist/sanctioned.yaml": {Data: []byte(`groups:
  it: ["IT-*", "dev_42"]
sanctioned:
  - {tool: teamviewer, reason: helpdesk, groups: [it]}
  - {tool: teamviewer, reason: contractor support, people: [Sam@Example.com]}
  - {tool: anydesk, reason: everywhere}
`)},
	}
	e, err := Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	sn := &agentv1.HostSnapshot{RemoteAccess: &agentv1.RemoteAccess{Tools: []*agentv1.RemoteTool{{ToolId: "teamviewer"}}}}
	now := time.Now()
	for _, tc := range []struct {
		device DeviceFacts
		fires  bool
	}{
		{DeviceFacts{ID: "dev_1", Hostname: "it-laptop-7"}, false}, // hostname glob, case-insensitive
		{DeviceFacts{ID: "dev_42", Hostname: "sales-1"}, false},    // device id
		{DeviceFacts{ID: "dev_2", Hostname: "sales-1"}, true},
		{DeviceFacts{ID: "dev_3", Hostname: "sales-2", Person: "sam@example.com"}, false}, // bound person
		{DeviceFacts{ID: "dev_4", Hostname: "sales-3", Person: "kim@example.com"}, true},
	} {
		f, err := e.Evaluate(context.Background(), ScopeSnapshot, Facts{Device: &tc.device, Snapshot: sn, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if (len(f) == 1) != tc.fires {
			t.Errorf("%+v: findings %v, want fires=%v", tc.device, f, tc.fires)
		}
	}
	if got := e.sanctioned.For(&DeviceFacts{ID: "x", Hostname: "x"}); strings.Join(got, ",") != "anydesk" {
		t.Errorf("unscoped entry: %v", got)
	}
	// The patterns are worked out at load: on every evaluation, For only
	// makes the list of tools (an allocation at most per tool, as it
	// grows).
	for _, d := range []*DeviceFacts{{ID: "dev_2", Hostname: "sales-1"}, {ID: "dev_1", Hostname: "it-laptop-7"}, {ID: "dev_42", Hostname: "sales-1"}} {
		tools := len(e.sanctioned.For(d))
		if n := testing.AllocsPerRun(100, func() { e.sanctioned.For(d) }); n > float64(tools) {
			t.Errorf("%s (%s): %v allocations per For, want at most %d", d.ID, d.Hostname, n, tools)
		}
	}
	fsys["allowlist/sanctioned.yaml"] = &fstest.MapFile{Data: []byte("sanctioned:\n  - {tool: teamviewer, reason: x, groups: [nope]}\n")}
	if _, err := Load(fsys); err == nil || !strings.Contains(err.Error(), `unknown group "nope"`) {
		t.Fatalf("unknown group: %v", err)
	}
	fsys["allowlist/sanctioned.yaml"] = &fstest.MapFile{Data: []byte("sanctioned:\n  - {tool: teamviewer}\n")}
	if _, err := Load(fsys); err == nil || !strings.Contains(err.Error(), "reason") {
		t.Fatalf("missing reason: %v", err)
	}
}
