package detect

import (
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/bonafide-sec/bonafide/policies"
)

// disabledRules are a rule that fires (and resolves its alerts when it
// clears) and one that fails at run time (params has no key "limit").
const disabledRules = `rules:
  - id: fires
    title: T
    severity: low
    description: d
    scope: device
    auto_resolve: true
    condition: device.hostname == "x"
  - id: broken
    title: T
    severity: low
    description: d
    scope: device
    auto_resolve: true
    condition: params.limit > 0
`

// TestLiveDisabledRules: a rule disabled with SetDisabled is not run by
// Live (no finding, no error, not auto-resolved), the engine itself is
// untouched, and re-enabling restores it.
func TestLiveDisabledRules(t *testing.T) {
	e, err := Load(fstest.MapFS{"rules/a.yaml": {Data: []byte(disabledRules)}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLive(e, now)
	facts := Facts{Device: &DeviceFacts{Hostname: "x"}, Now: now}
	ruleIDs := func(fs []Finding) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.RuleID)
		}
		return out
	}

	got, err := l.Evaluate(t.Context(), ScopeDevice, facts)
	if err == nil || !slices.Equal(ruleIDs(got), []string{"fires"}) {
		t.Fatalf("all enabled: %v, %v; want fires and broken's error", ruleIDs(got), err)
	}
	if ar := l.AutoResolve(ScopeDevice); !slices.Equal(ar, []string{"broken", "fires"}) {
		t.Fatalf("auto-resolve, all enabled: %v", ar)
	}

	if !l.SetDisabled([]string{"fires", "broken", "not_loaded"}) {
		t.Fatal("SetDisabled reported no change")
	}
	if l.SetDisabled([]string{"not_loaded", "broken", "fires"}) {
		t.Error("the same set again reported a change")
	}
	if d := l.Disabled(); !slices.Equal(d, []string{"broken", "fires", "not_loaded"}) || !l.IsDisabled("fires") || l.IsDisabled("other") {
		t.Errorf("Disabled: %v", d)
	}
	got, err = l.Evaluate(t.Context(), ScopeDevice, facts)
	if err != nil || len(got) != 0 {
		t.Fatalf("disabled: %v, %v; want nothing", ruleIDs(got), err)
	}
	if ar := l.AutoResolve(ScopeDevice); len(ar) != 0 {
		t.Errorf("auto-resolve lists disabled rules: %v", ar)
	}
	// The engine, which the dry-run and the rule tests use, is unchanged.
	if got, _ := l.Engine().Evaluate(t.Context(), ScopeDevice, facts); !slices.Equal(ruleIDs(got), []string{"fires"}) {
		t.Errorf("engine after SetDisabled: %v", ruleIDs(got))
	}

	// Only the broken rule disabled: the other fires, without error.
	l.SetDisabled([]string{"broken"})
	got, err = l.Evaluate(t.Context(), ScopeDevice, facts)
	if err != nil || !slices.Equal(ruleIDs(got), []string{"fires"}) {
		t.Fatalf("broken disabled: %v, %v", ruleIDs(got), err)
	}
	if ar := l.AutoResolve(ScopeDevice); !slices.Equal(ar, []string{"fires"}) {
		t.Errorf("auto-resolve with broken disabled: %v", ar)
	}

	// Re-enabled: as before. The set survives a reload of the rules.
	l.SetDisabled(nil)
	if got, err := l.Evaluate(t.Context(), ScopeDevice, facts); err == nil || len(got) != 1 {
		t.Fatalf("re-enabled: %v, %v", ruleIDs(got), err)
	}
	l.SetDisabled([]string{"fires"})
	if _, err := l.Reload(fstest.MapFS{"rules/b.yaml": {Data: []byte(disabledRules)}}, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Evaluate(t.Context(), ScopeDevice, facts); slices.Contains(ruleIDs(got), "fires") {
		t.Error("a reload re-enabled the disabled rule")
	}
}

// TestEngineSource: the engine keeps the files it loaded, and nothing else.
func TestEngineSource(t *testing.T) {
	fsys := fstest.MapFS{
		"rules/a.yaml":              {Data: []byte(disabledRules)},
		"catalog/kvm.yaml":          {Data: []byte("not: rules")},
		"rules/notes.txt":           {Data: []byte("not loaded")},
		"allowlist/sanctioned.yaml": {Data: []byte("groups: {}\nsanctioned: []\n")},
	}
	e, err := Load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := e.Source("rules/a.yaml"); !ok || string(b) != disabledRules {
		t.Errorf("rules/a.yaml: %q %v", b, ok)
	}
	for _, p := range []string{"catalog/kvm.yaml", "rules/notes.txt", "../etc/passwd", "/rules/a.yaml", "rules/../rules/a.yaml", ""} {
		if _, ok := e.Source(p); ok {
			t.Errorf("Source(%q) answered", p)
		}
	}
	if f := e.Files(); !slices.Equal(f, []string{SanctionedFile, "rules/a.yaml"}) {
		t.Errorf("Files: %v", f)
	}
}

// TestAutoResolveIsACopy checks that the lists AutoResolve returns, made
// once at Load, are the enabled auto-resolving rules of the scope and the
// caller's to modify (Live deletes the disabled ones from them in place).
func TestAutoResolveIsACopy(t *testing.T) {
	e, err := Load(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	for _, scope := range []Scope{ScopeDevice, ScopeSnapshot} {
		var want []string
		for _, r := range e.Rules() {
			if r.Enabled && r.AutoResolve && r.Scope == scope {
				want = append(want, r.ID)
			}
		}
		if len(want) == 0 {
			t.Fatalf("no auto-resolving %s rule", scope)
		}
		got := e.AutoResolve(scope)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: AutoResolve %v, want %v", scope, got, want)
		}
		got[0] = "changed"
		_ = append(got[:1], "appended")
		if again := e.AutoResolve(scope); !slices.Equal(again, want) {
			t.Errorf("%s: after the caller changed its list, AutoResolve %v, want %v", scope, again, want)
		}
	}
	if got := e.AutoResolve("other"); got != nil {
		t.Errorf("AutoResolve of an unknown scope: %v", got)
	}
}
