package detect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing/fstest"
	"time"
)

// Live is the active rule set. The collector swaps in a newly loaded set
// when the policy files change; a set that fails to load is not swapped
// in: the last good set stays active and the error is kept for the log
// and the API.
type Live struct {
	cur atomic.Pointer[Engine]
	// off holds the ids of the rules an administrator disabled (see
	// SetDisabled). A stored set is never modified: SetDisabled swaps in
	// a new one, so evaluations read it without a lock.
	off atomic.Pointer[map[string]bool]

	mu     sync.Mutex
	status LiveStatus
}

// LiveStatus says which rule set (and catalogs) are active and whether the
// last reload failed.
type LiveStatus struct {
	Digest      string    `json:"digest"`
	Rules       int       `json:"rules"`
	ActiveSince time.Time `json:"active_since"`
	// Catalogs are the versions of the active catalogs by file (see
	// SetCatalogs); nil when the collector recorded none.
	Catalogs map[string]string `json:"catalogs,omitempty"`
	// LastError is why the latest edit was refused ("" when it loaded).
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// NewLive makes e the active set.
func NewLive(e *Engine, now time.Time) *Live {
	l := &Live{}
	l.cur.Store(e)
	l.status = LiveStatus{Digest: e.Digest(), Rules: len(e.rules), ActiveSince: now}
	return l
}

// Engine is the active set.
func (l *Live) Engine() *Engine { return l.cur.Load() }

// Evaluate runs the active set (see Engine.Evaluate) without the disabled
// rules (SetDisabled).
func (l *Live) Evaluate(ctx context.Context, scope Scope, f Facts) ([]Finding, error) {
	return l.Engine().evaluate(ctx, scope, f, l.disabled())
}

// EvaluateReport runs the active set (see Engine.EvaluateReport) without
// the disabled rules.
func (l *Live) EvaluateReport(ctx context.Context, f Facts) ([]Finding, error) {
	return l.Engine().evaluateReport(ctx, f, l.disabled())
}

// AutoResolve is the active set's AutoResolve without the disabled rules:
// a disabled rule is not evaluated, so its open alerts stay as they are.
func (l *Live) AutoResolve(scope Scope) []string {
	off := l.disabled()
	return slices.DeleteFunc(l.Engine().AutoResolve(scope), func(id string) bool { return off[id] })
}

// SetDisabled makes ids the rules an administrator disabled on top of the
// policy files (the collector keeps them in its database, so that every
// replica follows an edit made on another). A disabled rule is not
// evaluated. Ids of rules the active set does not have are kept: they
// apply if such a rule appears. It reports whether the set changed.
func (l *Live) SetDisabled(ids []string) bool {
	off := make(map[string]bool, len(ids))
	for _, id := range ids {
		off[id] = true
	}
	if maps.Equal(off, l.disabled()) {
		return false
	}
	l.off.Store(&off)
	return true
}

// Disabled lists the rules disabled by SetDisabled, sorted.
func (l *Live) Disabled() []string { return slices.Sorted(maps.Keys(l.disabled())) }

// IsDisabled reports whether SetDisabled disabled the rule id.
func (l *Live) IsDisabled(id string) bool { return l.disabled()[id] }

// disabled is the set SetDisabled stored; nil (no rule) before the first
// call.
func (l *Live) disabled() map[string]bool {
	if p := l.off.Load(); p != nil {
		return *p
	}
	return nil
}

// Status returns the active set's digest and the last reload error.
func (l *Live) Status() LiveStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.status
	st.Catalogs = maps.Clone(st.Catalogs)
	return st
}

// SetCatalogs records the versions of the catalogs the collector uses
// besides the rules (file name to version), for Status.
func (l *Live) SetCatalogs(versions map[string]string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.status.Catalogs = maps.Clone(versions)
}

// SetError records why the latest edit of the policy tree was refused, as
// Reload does for the rules; a nil err clears it. A caller that reloads
// more than the rules calls it after Reload with everything that failed.
func (l *Live) SetError(err error, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		l.status.LastError, l.status.LastErrorAt = "", time.Time{}
		return
	}
	l.status.LastError, l.status.LastErrorAt = err.Error(), now
}

// Reload loads fsys and, when it loads and its digest differs, makes it
// the active set (changed is true). When it does not load, the active set
// stays and the error is returned and kept in Status.
func (l *Live) Reload(fsys fs.FS, now time.Time) (changed bool, err error) {
	e, err := Load(fsys)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.status.LastError, l.status.LastErrorAt = err.Error(), now
		return false, err
	}
	l.status.LastError, l.status.LastErrorAt = "", time.Time{}
	if e.Digest() == l.status.Digest {
		return false, nil
	}
	l.cur.Store(e)
	l.status.Digest, l.status.Rules, l.status.ActiveSince = e.Digest(), len(e.rules), now
	return true, nil
}

// LoadDraft loads one rule file held in memory (a draft under review) as
// rules/draft.yaml.
func LoadDraft(data []byte) (*Engine, error) {
	return Load(fstest.MapFS{"rules/draft.yaml": {Data: data}})
}

// Fingerprint summarises a policy tree's file names, sizes and
// modification times: a cheap check for edits between reloads.
func Fingerprint(fsys fs.FS) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\n", p, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}
