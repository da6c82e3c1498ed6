package detect_test

import (
	"testing"
	"testing/fstest"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/policies"
)

// FuzzLoad feeds arbitrary bytes to Load as a rule file. Load must not
// panic, must return either an engine or an error, and an engine it
// returns must run its tests and evaluate without panicking.
func FuzzLoad(f *testing.F) {
	agent, err := policies.FS().(interface{ ReadFile(string) ([]byte, error) }).ReadFile("rules/agent.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(agent),
		"",
		"rules:\n",
		"rules: [{id: r1, title: T, severity: low, description: D, condition: 'true'}]\n",
		"rules:\n  - id: r1\n    title: T\n    severity: low\n    description: D\n    scope: device\n    condition: |\n      device.id ==\n",
		"rules:\n  - &r {id: r1, title: T, severity: low, description: D, condition: 'true', params: &p {x: *p}}\n  - *r\n",
		"a: &a [*a, *a]\nb: &b [*a, *a]\nrules: [*b]\n",
		"rules:\n  - {id: r1, title: T, severity: low, description: D, condition: 'true', tests: [{name: x, facts: {now: 2026-01-01T00:00:00Z, snapshot: {identity: {hostname: h}}}, fires: true}]}\n",
		"rules: [{<<: {id: r1}, title: T}]\n---\nx\n",
	} {
		f.Add([]byte(seed))
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := detect.Load(fstest.MapFS{"rules/f.yaml": {Data: data}})
		if (e == nil) == (err == nil) {
			t.Fatalf("Load returned engine %v and error %v; want exactly one", e, err)
		}
		if e == nil {
			return
		}
		e.Test(t.Context())
		for _, scope := range []detect.Scope{detect.ScopeDevice, detect.ScopeSnapshot} {
			e.Evaluate(t.Context(), scope, detect.Facts{Now: now})
		}
	})
}
