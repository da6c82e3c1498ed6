// Package activity records whether a person was at the machine: once a
// minute the agent reads how long the machine's input (keyboard, pointer)
// has been idle and counts the minute as active when the idle time is under
// a threshold. Only per-UTC-hour counts of sampled and active minutes are
// kept and reported; input contents, key codes, pointer positions and
// window titles are never read.
//
// The counts live in a small JSON file in the agent's state directory so
// that a restart neither loses nor double-counts minutes. The file keeps,
// for each UTC hour of the last 14 days, a bit per minute of the hour that
// was sampled and a bit per minute that was active; a minute is sampled at
// most once, whatever the number of restarts or calls.
//
// Idle readers per OS (Readers):
//   - Linux: the desktop's own idle time of the person at the screen, on
//     their session D-Bus (GNOME's Mutter IdleMonitor, KDE's
//     kscreenlocker on X11), see desktop.go; when no desktop answers,
//     systemd-logind's idle hint of the active local user session
//     (loginctl show-session), see loginctl.go.
//   - macOS: HIDIdleTime of the IOHIDSystem registry entry (ioreg), see
//     machid.go.
//   - Windows: LastInputTime of the active console session (WTSSessionInfo),
//     see wtsinfo.go.
//   - Other OSes: none.
//
// The jiggler rhythm (Observe) needs an idle time read every
// RhythmInterval that resets at each input: Windows, macOS, and Linux
// while the desktop answers (logind's hint changes only when the desktop
// declares the session idle, so it is never used for the rhythm). Only
// the idle duration is ever read, never which input or where.
package activity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// DefaultThreshold is the idle time under which a minute counts as active
// when Open is given no threshold.
const DefaultThreshold = 5 * time.Minute

// RetainHours is how many UTC hours (14 days) the recorder keeps, the
// current hour included.
const RetainHours = 14 * 24

// idleTimeout bounds one idle reading in Run.
const idleTimeout = 20 * time.Second

// maxFileSize caps the state file Open reads; a full file is about 30 kB.
const maxFileSize = 1 << 20

// fileVersion is the version of the JSON state file.
const fileVersion = 1

// IdleFunc returns how long the machine's input has been idle (the most
// active local session's idle time); ok=false when it cannot tell (no
// session, no permission).
type IdleFunc func(ctx context.Context) (idle time.Duration, ok bool, err error)

// hourState is one UTC hour in the state file. Bit m of Sampled (Active)
// is set when minute m (0–59) of the hour was sampled (active), so the
// counts are the popcounts and can never exceed 60.
type hourState struct {
	Hour    int64  `json:"hour"` // Unix seconds of the start of the UTC hour.
	Sampled uint64 `json:"sampled"`
	Active  uint64 `json:"active"`
	// Resumes counts input resuming after at least MinResumeGap of
	// idleness (see Observe); GapSum and GapSumSq are the sums of those
	// idle gaps and of their squares, in seconds.
	Resumes  uint32  `json:"resumes,omitempty"`
	GapSum   float64 `json:"gap_sum,omitempty"`
	GapSumSq float64 `json:"gap_sum_sq,omitempty"`
}

// RhythmInterval is how often Run reads idle time for the jiggler rhythm
// where reading it is cheap and exact (Readers' rhythm reader).
const RhythmInterval = 5 * time.Second

// MinResumeGap is the idleness after which resumed input counts as a
// resumption: shorter pauses are typing and reading.
const MinResumeGap = 10 * time.Second

// maxResumesPerHour bounds the counted resumptions (a reading every
// RhythmInterval cannot see more).
const maxResumesPerHour = 3600

// fileState is the JSON state file.
type fileState struct {
	Version          int         `json:"version"`
	ThresholdSeconds uint32      `json:"threshold_seconds"`
	Hours            []hourState `json:"hours"`
}

// Recorder keeps per-UTC-hour counts of sampled and active minutes in a
// small JSON file (written to a temporary file and renamed, so a crash
// leaves the old or the new file), bounded to the last RetainHours hours.
// It is safe for concurrent use.
type Recorder struct {
	path      string
	threshold time.Duration
	now       func() time.Time // clock for pruning; tests replace it

	mu        sync.Mutex
	hours     map[int64]*hourState // keyed by Unix seconds of the hour start
	recovered error                // why the state file was discarded at Open
	// The previous Observe reading (not persisted).
	lastOK   bool
	lastIdle time.Duration
	lastAt   time.Time
}

// Open loads the recorder's state from path, which need not exist. A
// threshold <= 0 means DefaultThreshold; it is kept to whole seconds. A
// state file that cannot be decoded is discarded: Open then returns an
// empty recorder and no error, Recovered reports why, and Run logs it as
// a warning. Other read errors (permission) are returned.
func Open(path string, threshold time.Duration) (*Recorder, error) {
	return openClock(path, threshold, time.Now)
}

// openClock is Open with a clock for pruning.
func openClock(path string, threshold time.Duration, now func() time.Time) (*Recorder, error) {
	if path == "" {
		return nil, errors.New("activity: empty state file path")
	}
	if threshold <= 0 {
		threshold = DefaultThreshold
	}
	threshold = threshold.Truncate(time.Second)
	if threshold < time.Second {
		threshold = time.Second
	}
	r := &Recorder{
		path:      path,
		threshold: threshold,
		now:       now,
		hours:     make(map[int64]*hourState),
	}
	data, err := readCapped(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return r, nil
	case err != nil:
		return nil, fmt.Errorf("activity: reading state: %w", err)
	}
	if err := r.load(data); err != nil {
		r.hours = make(map[int64]*hourState)
		r.recovered = fmt.Errorf("activity: discarded corrupt state file %s: %w", path, err)
	}
	r.prune(r.now())
	return r, nil
}

// readCapped reads at most maxFileSize bytes of path.
func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	// A larger file is cut, which makes it fail to decode and be discarded.
	return data[:min(len(data), maxFileSize)], nil
}

// load decodes the state file into r.hours. Entries that are not the
// start of an hour are dropped; minute bits beyond 59 are cleared and an
// active bit without its sampled bit is cleared.
func (r *Recorder) load(data []byte) error {
	var st fileState
	if err := json.Unmarshal(data, &st); err != nil {
		return err
	}
	if st.Version != fileVersion {
		return fmt.Errorf("unknown version %d", st.Version)
	}
	// Counts taken with another threshold are kept: the threshold is a
	// configuration constant in practice, and losing 14 days of counts
	// on a change would be worse than a few hours counted differently.
	for _, h := range st.Hours {
		if h.Hour%3600 != 0 {
			continue
		}
		s := h.Sampled & minuteMask
		a := h.Active & s
		if s == 0 {
			continue
		}
		if old, ok := r.hours[h.Hour]; ok {
			old.Sampled |= s
			old.Active |= a
			continue
		}
		hs := &hourState{Hour: h.Hour, Sampled: s, Active: a}
		if h.Resumes <= maxResumesPerHour && h.GapSum >= 0 && h.GapSumSq >= 0 && !math.IsInf(h.GapSumSq, 0) && !math.IsNaN(h.GapSum+h.GapSumSq) {
			hs.Resumes, hs.GapSum, hs.GapSumSq = h.Resumes, h.GapSum, h.GapSumSq
		}
		r.hours[h.Hour] = hs
	}
	return nil
}

// minuteMask has the bits of minutes 0–59.
const minuteMask = 1<<60 - 1

// Recovered returns why Open discarded the state file, or nil.
func (r *Recorder) Recovered() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.recovered
}

// Threshold returns the idle time under which a minute counts as active.
func (r *Recorder) Threshold() time.Duration { return r.threshold }

// Sample takes one sample at now: the minute of now's UTC hour is counted
// as sampled, and as active if idle < threshold. A second sample in the
// same UTC minute is ignored (also across restarts, the minutes are
// persisted), so minutes cap at 60 per hour. ok=false (the idle reader
// could not tell) records nothing. The state file is rewritten when the
// sample counts; the error is from that write, the sample is kept in
// memory either way.
func (r *Recorder) Sample(now time.Time, idle time.Duration, ok bool) error {
	if !ok {
		return nil
	}
	now = now.UTC()
	hour := now.Truncate(time.Hour).Unix()
	bit := uint64(1) << uint(now.Minute())

	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hours[hour]
	if h == nil {
		h = &hourState{Hour: hour}
		r.hours[hour] = h
	}
	if h.Sampled&bit != 0 {
		return nil
	}
	h.Sampled |= bit
	if idle < r.threshold { // A negative idle (clock skew) counts as active.
		h.Active |= bit
	}
	r.prune(now)
	return r.saveLocked()
}

// Observe takes one idle reading for the jiggler rhythm. Input resumed
// between the previous reading and this one when idle did not grow by the
// time that passed; the idle gap it ended is then prev idle + elapsed −
// idle. Gaps of MinResumeGap or more count in now's UTC hour. A reading
// with ok=false, or more than 5 RhythmIntervals after the previous one
// (a suspend), only restarts the comparison. Observe does not write the
// state file: the next minute's Sample does.
func (r *Recorder) Observe(now time.Time, idle time.Duration, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prevOK, prevIdle, prevAt := r.lastOK, r.lastIdle, r.lastAt
	r.lastOK, r.lastIdle, r.lastAt = ok && idle >= 0, idle, now
	if !ok || idle < 0 || !prevOK {
		return
	}
	elapsed := now.Sub(prevAt)
	if elapsed <= 0 || elapsed > 5*RhythmInterval {
		return
	}
	// Idle readings are whole milliseconds or coarser: a second of slack.
	if idle >= prevIdle+elapsed-time.Second {
		return
	}
	gap := prevIdle + elapsed - idle
	if gap < MinResumeGap {
		return
	}
	hour := now.UTC().Truncate(time.Hour).Unix()
	h := r.hours[hour]
	if h == nil {
		h = &hourState{Hour: hour}
		r.hours[hour] = h
	}
	if h.Resumes >= maxResumesPerHour {
		return
	}
	s := gap.Seconds()
	h.Resumes++
	h.GapSum += s
	h.GapSumSq += s * s
}

// prune drops hours outside the retention window around now: older than
// RetainHours hours, or more than one hour ahead (left by a clock that was
// wrong and has been set back). At most RetainHours hours remain.
func (r *Recorder) prune(now time.Time) {
	cur := now.UTC().Truncate(time.Hour).Unix()
	oldest := cur - (RetainHours-1)*3600
	newest := cur + 3600
	for k := range r.hours {
		if k < oldest || k > newest {
			delete(r.hours, k)
		}
	}
	if len(r.hours) > RetainHours {
		keys := r.sortedKeys()
		for _, k := range keys[:len(keys)-RetainHours] {
			delete(r.hours, k)
		}
	}
}

func (r *Recorder) sortedKeys() []int64 {
	keys := make([]int64, 0, len(r.hours))
	for k := range r.hours {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// saveLocked writes the state file: a temporary file in the same
// directory, synced and renamed over the old one.
func (r *Recorder) saveLocked() error {
	st := fileState{Version: fileVersion, ThresholdSeconds: uint32(r.threshold / time.Second)}
	for _, k := range r.sortedKeys() {
		st.Hours = append(st.Hours, *r.hours[k])
	}
	data, err := json.Marshal(&st)
	if err != nil {
		return fmt.Errorf("activity: encoding state: %w", err)
	}
	if err := writeAtomic(r.path, data); err != nil {
		return fmt.Errorf("activity: writing state: %w", err)
	}
	return nil
}

func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".activity-*.tmp") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op once renamed
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Snapshot returns the Activity message with every kept hour of the
// retention window, oldest first, for the next report.
func (r *Recorder) Snapshot() *agentv1.Activity {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prune(r.now())
	a := &agentv1.Activity{
		IdleThresholdSeconds: uint32(r.threshold / time.Second),
		Hours:                make([]*agentv1.ActivityHour, 0, len(r.hours)),
	}
	for _, k := range r.sortedKeys() {
		h := r.hours[k]
		if h.Sampled == 0 {
			continue // resumptions seen, no minute sampled yet
		}
		ah := &agentv1.ActivityHour{
			Hour:           timestamppb.New(time.Unix(k, 0).UTC()),
			ActiveMinutes:  uint32(bits.OnesCount64(h.Active & h.Sampled & minuteMask)),
			SampledMinutes: uint32(bits.OnesCount64(h.Sampled & minuteMask)),
		}
		if h.Resumes > 0 {
			n := float64(h.Resumes)
			mean := h.GapSum / n
			ah.Resumptions, ah.ResumeGapMeanSeconds = h.Resumes, math.Round(mean*10)/10
			if h.Resumes >= 2 && mean > 0 {
				cv := math.Sqrt(max(0, h.GapSumSq/n-mean*mean)) / mean
				ah.ResumeGapCv = math.Round(cv*1000) / 1000
			}
		}
		a.Hours = append(a.Hours, ah)
	}
	return a
}

// Run samples with idle once a minute, shortly after each minute boundary,
// until ctx ends, and, when rhythm is not nil, reads rhythm every
// RhythmInterval for the jiggler rhythm (Observe). Each reading is bounded
// by a timeout. Errors are logged when they change, so a broken reader
// logs once, not every minute. Readers gives this OS's pair.
func (r *Recorder) Run(ctx context.Context, idle, rhythm IdleFunc, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := r.Recovered(); err != nil {
		log.Warn("activity: starting with empty counts", "err", err)
	}
	var lastReadErr, lastSaveErr string
	lastOK := true
	sample := func() {
		now := time.Now()
		ictx, cancel := context.WithTimeout(ctx, idleTimeout)
		d, ok, err := idle(ictx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if msg := errString(err); msg != lastReadErr {
			if err != nil {
				log.Warn("activity: reading idle time", "err", err)
			} else if lastReadErr != "" {
				log.Info("activity: reading idle time works again")
			}
			lastReadErr = msg
		}
		if err == nil && ok != lastOK {
			log.Debug("activity: idle time available", "ok", ok)
			lastOK = ok
		}
		if err != nil {
			ok = false
		}
		serr := r.Sample(now, d, ok)
		if msg := errString(serr); msg != lastSaveErr {
			if serr != nil {
				log.Warn("activity: saving counts", "err", serr)
			}
			lastSaveErr = msg
		}
	}
	// The rhythm readings: only where reading idle time is cheap and
	// exact. Whether a reading was possible is decided per reading: one
	// that is not (no desktop answers) only restarts Observe's comparison,
	// so the hour's rhythm stays unmeasured rather than invented.
	var tick <-chan time.Time
	if rhythm != nil {
		t := time.NewTicker(RhythmInterval)
		defer t.Stop()
		tick = t.C
	}
	rhythmOK, lastRhythmErr := false, ""
	observe := func() {
		ictx, cancel := context.WithTimeout(ctx, idleTimeout)
		d, ok, err := rhythm(ictx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if msg := errString(err); msg != lastRhythmErr {
			if err != nil {
				log.Warn("activity: reading idle time for the jiggler rhythm", "err", err)
			}
			lastRhythmErr = msg
		}
		ok = ok && err == nil
		if ok != rhythmOK {
			log.Debug("activity: idle time for the jiggler rhythm available", "ok", ok)
			rhythmOK = ok
		}
		r.Observe(time.Now(), d, ok)
	}
	sample()
	timer := time.NewTimer(untilNextMinute(time.Now()))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			observe()
		case <-timer.C:
			sample()
			// Recomputed each time: no drift, and a suspend or clock
			// change only delays the next sample to the next boundary.
			timer.Reset(untilNextMinute(time.Now()))
		}
	}
}

// untilNextMinute is the wait from now to one second past the next minute
// boundary; the second keeps a slightly early timer out of the current
// minute, which dedupe would ignore.
func untilNextMinute(now time.Time) time.Duration {
	next := now.Truncate(time.Minute).Add(time.Minute + time.Second)
	return next.Sub(now)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
