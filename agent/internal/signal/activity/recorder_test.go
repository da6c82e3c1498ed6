package activity

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

var t0 = time.Date(2026, 3, 10, 14, 0, 0, 0, time.UTC)

type hourCount struct {
	hour            time.Time
	active, sampled uint32
}

func counts(a *agentv1.Activity) []hourCount {
	var out []hourCount
	for _, h := range a.GetHours() {
		out = append(out, hourCount{h.GetHour().AsTime(), h.GetActiveMinutes(), h.GetSampledMinutes()})
	}
	return out
}

func equalCounts(t *testing.T, got, want []hourCount) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d hours %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range got {
		if !got[i].hour.Equal(want[i].hour) || got[i].active != want[i].active || got[i].sampled != want[i].sampled {
			t.Errorf("hour %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

// clock is a settable clock for pruning.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func openTest(t *testing.T, path string, threshold time.Duration, c *clock) *Recorder {
	t.Helper()
	r, err := openClock(path, threshold, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustSample(t *testing.T, r *Recorder, now time.Time, idle time.Duration, ok bool) {
	t.Helper()
	if err := r.Sample(now, idle, ok); err != nil {
		t.Fatal(err)
	}
}

func TestOpenDefaults(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(filepath.Join(dir, "activity.json"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Threshold() != DefaultThreshold {
		t.Errorf("threshold %v, want %v", r.Threshold(), DefaultThreshold)
	}
	a := r.Snapshot()
	if a.GetIdleThresholdSeconds() != 300 || len(a.GetHours()) != 0 {
		t.Errorf("empty snapshot: %v", a)
	}
	if r.Recovered() != nil {
		t.Errorf("Recovered: %v", r.Recovered())
	}
	if _, err := Open("", time.Minute); err == nil {
		t.Error("empty path: want error")
	}
	r, _ = Open(filepath.Join(dir, "x.json"), 90*time.Second+300*time.Millisecond)
	if got := r.Snapshot().GetIdleThresholdSeconds(); got != 90 {
		t.Errorf("threshold seconds %d, want 90", got)
	}
}

func TestHourBucketingUTC(t *testing.T) {
	c := &clock{t: t0.Add(3 * time.Hour)}
	r := openTest(t, filepath.Join(t.TempDir(), "a.json"), 5*time.Minute, c)
	ny, _ := time.LoadLocation("America/New_York")
	kolkata := time.FixedZone("IST", 5*3600+1800)
	// 14:59 UTC given in New York time, 15:00 UTC given in a half-hour zone.
	mustSample(t, r, t0.Add(59*time.Minute).In(ny), 0, true)
	mustSample(t, r, t0.Add(60*time.Minute).In(kolkata), 10*time.Minute, true)
	mustSample(t, r, t0.Add(61*time.Minute+30*time.Second), 4*time.Minute+59*time.Second, true)
	mustSample(t, r, t0.Add(62*time.Minute), 5*time.Minute, true) // at threshold: not active
	mustSample(t, r, t0.Add(63*time.Minute), -time.Second, true)  // skew: active
	mustSample(t, r, t0.Add(64*time.Minute), 0, false)            // cannot tell: nothing
	equalCounts(t, counts(r.Snapshot()), []hourCount{
		{t0, 1, 1},
		{t0.Add(time.Hour), 2, 4},
	})
	for _, h := range r.Snapshot().GetHours() {
		if h.GetHour().GetNanos() != 0 || h.GetHour().GetSeconds()%3600 != 0 {
			t.Errorf("hour not at an hour start: %v", h.GetHour())
		}
	}
}

func TestDedupeAndCap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.json")
	c := &clock{t: t0.Add(2 * time.Hour)}
	r := openTest(t, path, time.Minute, c)
	// The same minute: first sample wins, later ones are ignored, even
	// after a restart.
	mustSample(t, r, t0.Add(10*time.Second), time.Hour, true)
	mustSample(t, r, t0.Add(20*time.Second), 0, true)
	r = openTest(t, path, time.Minute, c)
	mustSample(t, r, t0.Add(59*time.Second), 0, true)
	equalCounts(t, counts(r.Snapshot()), []hourCount{{t0, 0, 1}})
	// A fast loop over the whole hour, several times: at most 60.
	for pass := 0; pass < 3; pass++ {
		for s := 0; s < 3600; s += 7 {
			mustSample(t, r, t0.Add(time.Duration(s)*time.Second), 0, true)
		}
	}
	equalCounts(t, counts(r.Snapshot()), []hourCount{{t0, 59, 60}})
}

func TestRetention(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.json")
	start := t0
	c := &clock{t: start}
	r := openTest(t, path, time.Minute, c)
	// One active sample per hour for 20 days.
	const hours = 20 * 24
	for i := 0; i < hours; i++ {
		now := start.Add(time.Duration(i)*time.Hour + 5*time.Minute)
		c.set(now)
		mustSample(t, r, now, 0, true)
	}
	got := counts(r.Snapshot())
	if len(got) != RetainHours {
		t.Fatalf("kept %d hours, want %d", len(got), RetainHours)
	}
	last := start.Add((hours - 1) * time.Hour)
	if !got[0].hour.Equal(last.Add(-(RetainHours-1)*time.Hour)) || !got[len(got)-1].hour.Equal(last) {
		t.Errorf("window %v … %v, want ending at %v", got[0].hour, got[len(got)-1].hour, last)
	}
	for i := 1; i < len(got); i++ {
		if !got[i].hour.After(got[i-1].hour) {
			t.Fatalf("not sorted at %d", i)
		}
	}
	// Snapshot prunes by the clock even without new samples.
	c.set(last.Add(RetainHours * time.Hour))
	if n := len(r.Snapshot().GetHours()); n != 0 {
		t.Errorf("after 14 idle days: %d hours, want 0", n)
	}
	// Reopening prunes too.
	c.set(last.Add(24 * time.Hour))
	r = openTest(t, path, time.Minute, c)
	if n := len(r.Snapshot().GetHours()); n != RetainHours-24 {
		t.Errorf("reopened a day later: %d hours, want %d", n, RetainHours-24)
	}
	// Hours far in the future (clock was wrong, now set back) are dropped.
	c.set(last.Add(-48 * time.Hour))
	mustSample(t, r, c.now(), 0, true)
	for _, h := range counts(r.Snapshot()) {
		if h.hour.After(c.now().Add(time.Hour)) {
			t.Fatalf("future hour %v kept", h.hour)
		}
	}
}

func TestPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "activity.json")
	c := &clock{t: t0.Add(time.Hour)}
	r := openTest(t, path, 2*time.Minute, c)
	mustSample(t, r, t0.Add(1*time.Minute), 0, true)
	mustSample(t, r, t0.Add(2*time.Minute), 3*time.Minute, true)
	mustSample(t, r, t0.Add(61*time.Minute), 0, true)
	want := counts(r.Snapshot())

	r2 := openTest(t, path, 2*time.Minute, c)
	equalCounts(t, counts(r2.Snapshot()), want)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Windows has no POSIX modes (Go reports 0666 for any writable file):
	// there the file inherits the ACL of the state dir, under
	// %ProgramData%\Bonafide, which the agent gives to SYSTEM and
	// Administrators only (config.securePrivateDir).
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	// No temporary files left behind.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("state dir has %d entries, want 1", len(ents))
	}
	// The file holds counts only.
	b, _ := os.ReadFile(path)
	var st fileState
	if err := json.Unmarshal(b, &st); err != nil || st.Version != 1 || st.ThresholdSeconds != 120 || len(st.Hours) != 2 {
		t.Errorf("file %s: %+v %v", b, st, err)
	}
}

func TestCorruptFile(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":       "\x00\x01not json",
		"truncated":     `{"version":1,"hours":[{"hour":`,
		"wrong version": `{"version":99,"hours":[]}`,
		"wrong type":    `{"version":1,"hours":"x"}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			c := &clock{t: t0}
			r := openTest(t, path, time.Minute, c)
			if r.Recovered() == nil {
				t.Fatal("Recovered: want an error")
			}
			if n := len(r.Snapshot().GetHours()); n != 0 {
				t.Errorf("%d hours from a corrupt file", n)
			}
			mustSample(t, r, t0, 0, true)
			r = openTest(t, path, time.Minute, c)
			if r.Recovered() != nil {
				t.Errorf("rewritten file still corrupt: %v", r.Recovered())
			}
			equalCounts(t, counts(r.Snapshot()), []hourCount{{t0, 1, 1}})
		})
	}
	// Sanitising: odd hours dropped, bits beyond minute 59 and active
	// without sampled cleared, duplicates merged.
	path := filepath.Join(t.TempDir(), "a.json")
	h := t0.Unix()
	content := `{"version":1,"threshold_seconds":60,"hours":[` +
		`{"hour":` + itoa(h+5) + `,"sampled":1,"active":1},` +
		`{"hour":` + itoa(h) + `,"sampled":18446744073709551615,"active":18446744073709551615},` +
		`{"hour":` + itoa(h-3600) + `,"sampled":1,"active":3},` +
		`{"hour":` + itoa(h-3600) + `,"sampled":4,"active":0}]}`
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	r := openTest(t, path, time.Minute, &clock{t: t0})
	if r.Recovered() != nil {
		t.Fatal(r.Recovered())
	}
	equalCounts(t, counts(r.Snapshot()), []hourCount{{t0.Add(-time.Hour), 1, 2}, {t0, 60, 60}})
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestUnreadableState(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should be: read fails, not "corrupt".
	path := filepath.Join(dir, "a.json")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, time.Minute); err == nil {
		t.Error("want a read error")
	}
	// Write errors are returned by Sample, counts stay in memory.
	r := openTest(t, filepath.Join(dir, "sub", "a.json"), time.Minute, &clock{t: t0})
	r.path = path // rename onto a directory fails
	if err := r.Sample(t0, 0, true); err == nil {
		t.Error("want a write error")
	}
	equalCounts(t, counts(r.Snapshot()), []hourCount{{t0, 1, 1}})
}

func TestConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.json")
	c := &clock{t: t0.Add(time.Hour)}
	r := openTest(t, path, time.Minute, c)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for m := 0; m < 60; m++ {
				if err := r.Sample(t0.Add(time.Duration(m)*time.Minute+time.Duration(g)*time.Second), 0, m%2 == 0 || g == 0); err != nil {
					t.Error(err)
					return
				}
				_ = r.Snapshot()
			}
		}(g)
	}
	wg.Wait()
	got := counts(r.Snapshot())
	if len(got) != 1 || got[0].sampled != 60 || got[0].active != 60 {
		t.Errorf("got %v, want 60/60 in one hour", got)
	}
	r2 := openTest(t, path, time.Minute, c)
	equalCounts(t, counts(r2.Snapshot()), got)
}

func TestRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.json")
	r, err := Open(path, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	r.recovered = os.ErrInvalid // as if the file had been corrupt
	var calls atomic.Int32
	idle := func(ctx context.Context) (time.Duration, bool, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("idle called without a deadline")
		}
		calls.Add(1)
		return 0, false, os.ErrPermission
	}
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx, idle, nil, log); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if calls.Load() == 0 {
		t.Fatal("Run never sampled")
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "starting with empty counts") || !strings.Contains(out, "reading idle time") {
		t.Errorf("log: %s", out)
	}
	// A successful sample is recorded.
	r2, _ := Open(filepath.Join(t.TempDir(), "b.json"), time.Minute)
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() {
		r2.Run(ctx, func(context.Context) (time.Duration, bool, error) { return time.Second, true, nil }, nil, nil)
		close(done)
	}()
	deadline = time.Now().Add(5 * time.Second)
	for len(r2.Snapshot().GetHours()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if hs := r2.Snapshot().GetHours(); len(hs) != 1 || hs[0].GetActiveMinutes() != 1 {
		t.Errorf("after Run: %v", hs)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
