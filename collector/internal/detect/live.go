package detect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
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

// Evaluate runs the active set (see Engine.Evaluate).
func (l *Live) Evaluate(ctx context.Context, scope Scope, f Facts) ([]Finding, error) {
	return l.Engine().Evaluate(ctx, scope, f)
}

// AutoResolve is the active set's AutoResolve.
func (l *Live) AutoResolve(scope Scope) []string { return l.Engine().AutoResolve(scope) }

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
