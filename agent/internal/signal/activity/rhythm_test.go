package activity

import (
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// simulate feeds the recorder one hour of idle readings every
// RhythmInterval, where inputs are the times (from the hour's start) at
// which input happened (and at its start), and a Sample every minute.
func simulate(t *testing.T, r *Recorder, start time.Time, inputs []time.Duration) {
	t.Helper()
	simulateVia(t, r, start, inputs, func(d time.Duration) time.Duration { return d })
}

// simulateVia is simulate with each idle reading passed through read, the
// OS reader's parser of what the OS prints for that idle time.
func simulateVia(t *testing.T, r *Recorder, start time.Time, inputs []time.Duration, read func(time.Duration) time.Duration) {
	t.Helper()
	last := time.Duration(0) // input at the hour's start
	i := 0
	for at := time.Duration(0); at < time.Hour; at += RhythmInterval {
		for i < len(inputs) && inputs[i] <= at {
			last = inputs[i]
			i++
		}
		idle := read(at - last)
		r.Observe(start.Add(at), idle, true)
		if at%time.Minute == 0 {
			mustSample(t, r, start.Add(at), idle, true)
		}
	}
}

// TestRhythmJiggler: a jiggler that moves the pointer every 60 s (PiKVM's
// default period), with and without ±25 % jitter, gives about 60
// resumptions an hour with a small coefficient of variation; a person
// (bursts of typing between pauses of 10 s to 10 min) gives a large one.
// The state survives a reopen.
func TestRhythmJiggler(t *testing.T) {
	start := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	c := &clock{t: start.Add(time.Hour)}
	path := filepath.Join(t.TempDir(), "activity.json")
	r := openTest(t, path, 0, c)
	rng := rand.New(rand.NewPCG(1, 2))

	var jiggler, jittered, person []time.Duration
	for at := 7 * time.Second; at < time.Hour; at += time.Minute {
		jiggler = append(jiggler, at)
	}
	for at := 3 * time.Second; at < time.Hour; at += time.Duration(45+rng.IntN(31)) * time.Second {
		jittered = append(jittered, at)
	}
	for at := time.Second; at < time.Hour; {
		for range 1 + rng.IntN(30) { // a burst: inputs a second apart
			person = append(person, at)
			at += time.Second
		}
		at += time.Duration(10+rng.IntN(590)) * time.Second
	}
	simulate(t, r, start, jiggler)
	simulate(t, r, start.Add(time.Hour), jittered)
	simulate(t, r, start.Add(2*time.Hour), person)
	c.set(start.Add(3 * time.Hour))

	for _, rr := range []*Recorder{r, openTest(t, path, 0, c)} {
		hours := rr.Snapshot().GetHours()
		if len(hours) != 3 {
			t.Fatalf("%d hours", len(hours))
		}
		j, jj, p := hours[0], hours[1], hours[2]
		if j.GetResumptions() < 55 || j.GetResumptions() > 61 || j.GetResumeGapCv() > 0.05 || j.GetResumeGapMeanSeconds() < 55 || j.GetResumeGapMeanSeconds() > 65 {
			t.Errorf("jiggler: %v", j)
		}
		if jj.GetResumptions() < 50 || jj.GetResumeGapCv() > 0.2 {
			t.Errorf("jittered jiggler: %v", jj)
		}
		if p.GetResumptions() < 5 || p.GetResumeGapCv() < 0.4 {
			t.Errorf("person: %v", p)
		}
	}
}

// TestRhythmMacIoreg: the macOS reader's chain. Each reading is what
// `ioreg -c IOHIDSystem -d 1 -r -a` prints (the fixture's format, with
// HIDIdleTime in nanoseconds) parsed by macHIDIdleTime: a 60 s jiggler and
// a person come out as in TestRhythmJiggler.
func TestRhythmMacIoreg(t *testing.T) {
	fixture := string(readFixture(t, "ioreg_iohidsystem.plist"))
	const want = "<integer>42500000000</integer>"
	if !strings.Contains(fixture, want) {
		t.Fatalf("fixture lacks %s", want)
	}
	read := func(d time.Duration) time.Duration {
		out := strings.Replace(fixture, want, "<integer>"+strconv.FormatInt(d.Nanoseconds(), 10)+"</integer>", 1)
		ns, err := macHIDIdleTime([]byte(out))
		if err != nil {
			t.Fatal(err)
		}
		return time.Duration(ns)
	}
	start := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	c := &clock{t: start.Add(2 * time.Hour)}
	r := openTest(t, filepath.Join(t.TempDir(), "activity.json"), 0, c)
	rng := rand.New(rand.NewPCG(3, 4))
	var jiggler, person []time.Duration
	for at := 7 * time.Second; at < time.Hour; at += time.Minute {
		jiggler = append(jiggler, at)
	}
	for at := time.Second; at < time.Hour; {
		for range 1 + rng.IntN(30) {
			person = append(person, at)
			at += time.Second
		}
		at += time.Duration(10+rng.IntN(590)) * time.Second
	}
	simulateVia(t, r, start, jiggler, read)
	simulateVia(t, r, start.Add(time.Hour), person, read)
	hours := r.Snapshot().GetHours()
	if len(hours) != 2 {
		t.Fatalf("%d hours", len(hours))
	}
	if j := hours[0]; j.GetResumptions() < 55 || j.GetResumptions() > 61 || j.GetResumeGapCv() > 0.05 {
		t.Errorf("jiggler through ioreg: %v", j)
	}
	if p := hours[1]; p.GetResumptions() < 5 || p.GetResumeGapCv() < 0.4 {
		t.Errorf("person through ioreg: %v", p)
	}
}

// TestObserveGaps: a reading after a suspend, a failed reading and short
// pauses start nothing.
func TestObserveGaps(t *testing.T) {
	start := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	c := &clock{t: start}
	r := openTest(t, filepath.Join(t.TempDir(), "a.json"), 0, c)
	mustSample(t, r, start, 0, true)
	r.Observe(start, 30*time.Second, true)
	r.Observe(start.Add(time.Hour), 0, true) // after a suspend
	r.Observe(start.Add(time.Hour+5*time.Second), 5*time.Second, false)
	r.Observe(start.Add(time.Hour+10*time.Second), 0, true) // after a failed reading
	r.Observe(start.Add(time.Hour+15*time.Second), 4*time.Second, true)
	r.Observe(start.Add(time.Hour+20*time.Second), 0, true) // a 9 s pause
	r.Observe(start.Add(time.Hour+25*time.Second), -time.Second, true)
	if h := r.hours[start.Unix()]; h.Resumes != 0 {
		t.Errorf("resumes %d", h.Resumes)
	}
	if h := r.hours[start.Add(time.Hour).Unix()]; h != nil && h.Resumes != 0 {
		t.Errorf("resumes %d", h.Resumes)
	}
}
