package detect

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const liveRule = `rules:
  - id: r1
    title: T
    severity: low
    description: d
    scope: device
    condition: device.hostname == "x"
    tests:
      - {name: fires, facts: {now: 2026-01-01T00:00:00Z, device: {hostname: x}}, fires: true}
      - {name: quiet, facts: {now: 2026-01-01T00:00:00Z, device: {hostname: y}}, fires: false}
`

func TestLiveReloadKeepsLastGoodSet(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "rules"), 0o755)
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, "rules", "a.yaml"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(liveRule)
	e, err := Load(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLive(e, now)
	fp0, _ := Fingerprint(os.DirFS(dir))

	// Unchanged files: nothing to do.
	if changed, err := l.Reload(os.DirFS(dir), now); changed || err != nil {
		t.Fatalf("unchanged reload: %v %v", changed, err)
	}
	// A broken edit is refused; the last good set stays active.
	write(strings.Replace(liveRule, `device.hostname == "x"`, `device.hostnme == "x"`, 1))
	if fp, _ := Fingerprint(os.DirFS(dir)); fp == fp0 {
		t.Fatal("fingerprint did not change")
	}
	changed, err := l.Reload(os.DirFS(dir), now.Add(time.Minute))
	if changed || err == nil || !strings.Contains(err.Error(), "a.yaml:7") {
		t.Fatalf("broken edit: %v %v", changed, err)
	}
	if st := l.Status(); st.Digest != e.Digest() || !strings.Contains(st.LastError, "hostnme") || l.Engine() != e {
		t.Fatalf("status after a broken edit: %+v", st)
	}
	// A good edit becomes active and clears the error.
	write(strings.Replace(liveRule, "severity: low", "severity: high", 1))
	changed, err = l.Reload(os.DirFS(dir), now.Add(2*time.Minute))
	if !changed || err != nil {
		t.Fatalf("good edit: %v %v", changed, err)
	}
	st := l.Status()
	if st.Digest == e.Digest() || st.LastError != "" || l.Engine().Rules()[0].Severity != "high" || !st.ActiveSince.Equal(now.Add(2*time.Minute)) {
		t.Fatalf("status after a good edit: %+v", st)
	}
}

func TestLiveSetErrorAndCatalogs(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "rules"), 0o755)
	os.WriteFile(filepath.Join(dir, "rules", "a.yaml"), []byte(liveRule), 0o644)
	e, err := Load(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLive(e, now)
	vs := map[string]string{"kvm": "k1"}
	l.SetCatalogs(vs)
	vs["kvm"] = "changed by the caller"
	l.SetError(errors.New("allowlist/offices.yaml: bad"), now)
	st := l.Status()
	if st.Catalogs["kvm"] != "k1" || st.LastError != "allowlist/offices.yaml: bad" || !st.LastErrorAt.Equal(now) {
		t.Fatalf("status %+v", st)
	}
	st.Catalogs["kvm"] = "changed by a reader"
	// A rule reload that loads clears the error; so does SetError(nil).
	l.SetError(errors.New("x"), now)
	if changed, err := l.Reload(os.DirFS(dir), now); changed || err != nil || l.Status().LastError != "" {
		t.Fatalf("reload: %v %v %+v", changed, err, l.Status())
	}
	l.SetError(errors.New("x"), now)
	l.SetError(nil, now)
	if st := l.Status(); st.LastError != "" || !st.LastErrorAt.IsZero() || st.Catalogs["kvm"] != "k1" {
		t.Fatalf("after SetError(nil): %+v", st)
	}
}
