package outputs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// Metrics is what the outputs report to the Prometheus metrics
// (collector/internal/metrics implements it); nil reports nothing.
type Metrics interface {
	// OutputBacklog sets how many events wait for delivery to output.
	OutputBacklog(output string, n int)
	// OutputFailed counts one failed delivery attempt to output.
	OutputFailed(output string)
	// OutputRemoved drops the series of an output no longer configured.
	OutputRemoved(output string)
}

// Options are what the outputs need besides the store.
type Options struct {
	// Collector is the web UI's address as users reach it (serve
	// --public-url): the "collector" of webhook bodies and the base of
	// the links to alerts.
	Collector string
	// Version is the collector's version, in CEF and OCSF events.
	Version string
	// Metrics receives the backlog and failures of each output (may be nil).
	Metrics Metrics
	// Poll is how often an output that is up to date looks for new
	// events (default 1s).
	Poll time.Duration
}

// lockKey names the senders' advisory lock: one replica delivers.
const lockKey = 0x626f6e6166696404

// batch is how many outbox events a sender reads at once.
const batch = 100

// sink is one output's transport.
type sink interface {
	Send(ctx context.Context, ev Event) error
	Close() error
}

// Manager runs the configured outputs: it holds the active configuration
// (Reload, Watch) and, on the replica that holds the senders' lock, one
// sender per output (Run).
type Manager struct {
	st   *store.Store
	log  *slog.Logger
	env  env
	opts Options

	mu        sync.Mutex
	file      string
	cfg       *Config
	loadErr   error
	loadErrAt time.Time
	senders   map[string]*sender
	changed   chan struct{}
}

// sender delivers one output.
type sender struct {
	o      Output
	sink   sink
	cancel context.CancelFunc
	done   chan struct{}
}

// New builds a Manager with no outputs.
func New(st *store.Store, log *slog.Logger, opts Options) *Manager {
	host, _ := os.Hostname()
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	return &Manager{st: st, log: log, opts: opts, cfg: &Config{},
		env:     env{Collector: opts.Collector, Version: opts.Version, Hostname: host},
		senders: map[string]*sender{}, changed: make(chan struct{}, 1)}
}

// Reload loads the outputs file. A file that does not load changes
// nothing: the last good outputs keep running and the error is kept for
// Status until a good edit loads. It reports whether the outputs changed.
func (m *Manager) Reload(file string, now time.Time) (bool, error) {
	cfg, err := Load(file)
	if err == nil {
		for i := range cfg.Outputs {
			if _, err = newSink(&cfg.Outputs[i], m.env); err != nil {
				break
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.file = file
	if err != nil {
		if m.loadErr == nil || m.loadErr.Error() != err.Error() {
			m.loadErrAt = now
		}
		m.loadErr = err
		return false, err
	}
	m.loadErr = nil
	if reflect.DeepEqual(cfg, m.cfg) {
		return false, nil
	}
	m.cfg = cfg
	select {
	case m.changed <- struct{}{}:
	default:
	}
	return true, nil
}

// Watch reloads the outputs file every interval, logging what changed
// and what was refused.
func (m *Manager) Watch(ctx context.Context, file string, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	var last string
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		changed, err := m.Reload(file, time.Now())
		switch {
		case err != nil && err.Error() != last:
			m.log.Error("outputs edit refused; the last good outputs stay active", "err", err)
		case changed:
			m.log.Info("outputs reloaded", "outputs", len(m.config().Outputs))
		}
		last = ""
		if err != nil {
			last = err.Error()
		}
	}
}

func (m *Manager) config() *Config {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg
}

// Run delivers the outputs while this replica holds the senders' lock,
// and waits for it otherwise; it returns when ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	for {
		if ok, unlock, err := m.st.TryLock(ctx, lockKey); err == nil && ok {
			m.lead(ctx)
			unlock()
		}
		if !sleep(ctx, 5*time.Second) {
			return nil
		}
	}
}

// lead runs a sender per configured output, restarting those whose
// configuration changed, and prunes delivered events.
func (m *Manager) lead(ctx context.Context) {
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	defer m.sync(ctx, &Config{})
	for {
		m.sync(ctx, m.config())
		select {
		case <-ctx.Done():
			return
		case <-m.changed:
		case <-prune.C:
			m.prune(ctx)
		}
	}
}

// sync makes the running senders those of cfg.
func (m *Manager) sync(ctx context.Context, cfg *Config) {
	want := map[string]Output{}
	for _, o := range cfg.Outputs {
		want[o.Name] = o
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, s := range m.senders {
		if o, ok := want[name]; ok && reflect.DeepEqual(o, s.o) {
			continue
		}
		s.cancel()
		<-s.done
		s.sink.Close()
		delete(m.senders, name)
		if _, ok := want[name]; !ok && m.opts.Metrics != nil {
			m.opts.Metrics.OutputRemoved(name)
		}
	}
	for name, o := range want {
		if _, ok := m.senders[name]; ok {
			continue
		}
		sk, err := newSink(&o, m.env)
		if err != nil { // checked by Reload
			m.log.Error("output", "output", name, "err", err)
			continue
		}
		sctx, cancel := context.WithCancel(ctx)
		s := &sender{o: o, sink: sk, cancel: cancel, done: make(chan struct{})}
		m.senders[name] = s
		go func() {
			defer close(s.done)
			m.deliver(sctx, &s.o, s.sink)
		}()
	}
}

// deliver sends output o's events in outbox order, each until it is
// delivered, and records its progress; it returns when ctx ends.
func (m *Manager) deliver(ctx context.Context, o *Output, sk sink) {
	log := m.log.With("output", o.Name)
	var cur store.OutboxCursor
	for {
		st, err := m.st.StartOutput(ctx, o.Name)
		if err == nil {
			cur = st.Cursor
			break
		}
		log.Error("output start", "err", err)
		if !sleep(ctx, m.opts.Poll) {
			return
		}
	}
	log.Info("output sender started", "type", o.Type, "target", o.target())
	for {
		evs, err := m.st.OutboxAfter(ctx, cur, batch)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Error("outbox", "err", err)
		}
		m.reportBacklog(ctx, o.Name)
		if len(evs) == 0 {
			if !sleep(ctx, m.opts.Poll) {
				return
			}
			continue
		}
		skipped := false
		for _, row := range evs {
			if !o.wants(row) {
				cur, skipped = row.Cursor, true
				continue
			}
			ev, err := decode(row)
			if err != nil { // cannot happen with rows the store wrote; never block on one
				log.Error("outbox event skipped", "err", err)
				cur, skipped = row.Cursor, true
				continue
			}
			if !m.send(ctx, o, sk, ev) {
				return
			}
			cur, skipped = row.Cursor, false
			if err := m.st.OutputAdvanced(ctx, o.Name, cur, true, time.Now()); err != nil && ctx.Err() == nil {
				log.Error("output progress", "err", err)
			}
		}
		if skipped {
			if err := m.st.OutputAdvanced(ctx, o.Name, cur, false, time.Now()); err != nil && ctx.Err() == nil {
				log.Error("output progress", "err", err)
			}
		}
	}
}

// send delivers ev, retrying with exponential backoff (one second,
// doubling up to the output's max_backoff) until it is delivered or ctx
// ends; it reports whether it was delivered.
func (m *Manager) send(ctx context.Context, o *Output, sk sink, ev Event) bool {
	wait := time.Second
	for {
		actx, cancel := context.WithTimeout(ctx, o.Timeout)
		err := sk.Send(actx, ev)
		cancel()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		m.log.Warn("output delivery failed; retrying", "output", o.Name, "delivery", ev.UID, "err", err, "retry_in", wait)
		if m.opts.Metrics != nil {
			m.opts.Metrics.OutputFailed(o.Name)
		}
		if err := m.st.OutputFailed(ctx, o.Name, err.Error(), time.Now()); err != nil && ctx.Err() == nil {
			m.log.Error("output state", "output", o.Name, "err", err)
		}
		if !sleep(ctx, wait) {
			return false
		}
		wait = min(wait*2, o.MaxBackoff)
	}
}

func (m *Manager) reportBacklog(ctx context.Context, name string) {
	if m.opts.Metrics == nil {
		return
	}
	if st, err := m.st.OutputStates(ctx, []string{name}); err == nil {
		m.opts.Metrics.OutputBacklog(name, int(st[0].Backlog))
	}
}

// prune deletes the events every configured output has passed; without
// outputs, those older than a day.
func (m *Manager) prune(ctx context.Context) {
	var names []string
	for _, o := range m.config().Outputs {
		names = append(names, o.Name)
	}
	before := time.Now()
	if len(names) == 0 {
		before = before.Add(-24 * time.Hour)
	}
	if n, err := m.st.PruneOutbox(ctx, names, before); err != nil && ctx.Err() == nil {
		m.log.Error("prune outbox", "err", err)
	} else if n > 0 {
		m.log.Debug("outbox pruned", "events", n)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func newSink(o *Output, e env) (sink, error) {
	switch o.Type {
	case TypeWebhook:
		return newHTTP(o, func(ev Event) ([]byte, error) { return jsonBody(ev, e) }), nil
	case TypeSlack:
		return newHTTP(o, func(ev Event) ([]byte, error) { return slackBody(ev, e) }), nil
	case TypeTeams:
		return newHTTP(o, func(ev Event) ([]byte, error) { return teamsBody(ev, e) }), nil
	case TypeSyslog:
		return newSyslog(o, e)
	case TypeOCSF:
		if o.Path != "" {
			return &fileSink{o: o, env: e}, nil
		}
		return newHTTP(o, func(ev Event) ([]byte, error) { return ocsf(ev, e) }), nil
	}
	return nil, fmt.Errorf("output %s: unknown type %q", o.Name, o.Type)
}

// Status is the outputs' configuration and delivery state, as GET
// /api/v1/outputs and the web UI show it.
type Status struct {
	File        string         `json:"file,omitempty"`
	LastError   string         `json:"last_error,omitempty"`
	LastErrorAt time.Time      `json:"last_error_at,omitzero"`
	Outputs     []OutputStatus `json:"outputs"`
}

// OutputStatus is one output's configuration (without secrets) and its
// delivery state.
type OutputStatus struct {
	store.OutputState
	Type        string   `json:"type"`
	Target      string   `json:"target"`
	Events      []string `json:"events"`
	MinSeverity string   `json:"min_severity,omitempty"`
	Rules       []string `json:"rules,omitempty"`
}

// Status reads the outputs' state from the database (the same on every
// replica).
func (m *Manager) Status(ctx context.Context) (Status, error) {
	m.mu.Lock()
	st := Status{File: m.file, LastErrorAt: m.loadErrAt, Outputs: []OutputStatus{}}
	if m.loadErr != nil {
		st.LastError = m.loadErr.Error()
	} else {
		st.LastErrorAt = time.Time{}
	}
	cfg := m.cfg
	m.mu.Unlock()
	var names []string
	for _, o := range cfg.Outputs {
		names = append(names, o.Name)
	}
	states, err := m.st.OutputStates(ctx, names)
	if err != nil {
		return Status{}, err
	}
	for i, o := range cfg.Outputs {
		st.Outputs = append(st.Outputs, OutputStatus{OutputState: states[i], Type: o.Type, Target: o.target(),
			Events: slices.Clone(o.Events), MinSeverity: o.MinSeverity, Rules: slices.Clone(o.Rules)})
	}
	return st, nil
}

// ErrNoOutput is returned for an output that is not configured.
var ErrNoOutput = errors.New("no such output")

// SendTest sends a test event (a made-up low alert) to output name at
// once, past its filters and its queue, and returns the delivery id.
func (m *Manager) SendTest(ctx context.Context, name string) (string, error) {
	m.mu.Lock()
	var o *Output
	for i := range m.cfg.Outputs {
		if m.cfg.Outputs[i].Name == name {
			o = &m.cfg.Outputs[i]
		}
	}
	var sk sink
	if s, ok := m.senders[name]; ok {
		sk = s.sink
	}
	m.mu.Unlock()
	if o == nil {
		return "", ErrNoOutput
	}
	if sk == nil {
		var err error
		if sk, err = newSink(o, m.env); err != nil {
			return "", err
		}
		defer sk.Close()
	}
	ev := testEvent(rand.Text(), time.Now())
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	return ev.UID, sk.Send(ctx, ev)
}
