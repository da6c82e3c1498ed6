package store

// The store's core as the packages beside it use it (store/accounts:
// users, sessions and API tokens; store/presencestore: presence checks).
// They keep their tables in this database and its migrations, and reach
// it only through what this file exports: transactions, placeholder
// rebinding, the read path, the audit log, and the stored forms of times
// and secrets. Nothing on the ingest or fleet path calls them.

import (
	"context"
	"database/sql"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
)

// Querier runs reads: the read path (Reader) or a transaction (*sql.Tx).
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Tx runs fn in a write transaction, committed when fn returns nil.
func (s *Store) Tx(ctx context.Context, fn func(*sql.Tx) error) error { return s.tx(ctx, fn) }

// Rebind rewrites a query's ? placeholders to the engine's form; every
// query a Querier or transaction runs goes through it.
func (s *Store) Rebind(query string) string { return s.q(query) }

// Exec runs one write statement (? placeholders) outside a transaction.
func (s *Store) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.exec(ctx, query, args...)
}

// Reader is the read path outside the writer (queries already rebound).
func (s *Store) Reader() Querier { return s.reader() }

// AuditTx records a change in the audit log, and in the outbox for the
// outputs, in tx, the transaction that makes it.
func (s *Store) AuditTx(ctx context.Context, tx *sql.Tx, actor, action, targetType, targetID string, detail map[string]any) error {
	return s.audit(ctx, tx, actor, action, targetType, targetID, detail)
}

// ForUpdate ends a query that must lock the rows it reads until tx ends
// (PostgreSQL; SQLite's single writer needs no lock).
func (s *Store) ForUpdate() string { return s.forUpdate() }

// Raise raises finding f on device deviceID at at, in tx, through the
// rules' path: the device's facts are read and judged with f as the
// verdict, so the device's risk and its cluster's co-signals follow.
func (s *Store) Raise(ctx context.Context, tx *sql.Tx, deviceID string, f detect.Finding, at time.Time, ev Evaluator) error {
	if err := s.lockClusters(ctx, tx); err != nil {
		return err
	}
	w := wtx{Tx: tx, s: s, clusters: true}
	facts, err := s.deviceFacts(ctx, w, deviceID, at, nil, nil)
	if err != nil {
		return err
	}
	return s.judge(ctx, w, facts, verdict{findings: []detect.Finding{f}}, nil, at, ev, nil)
}

// Micros is the stored form of a time: Unix microseconds, 0 for the zero
// time.
func Micros(t time.Time) int64 { return micros(t) }

// FromMicros reads a stored time back (UTC); 0 is the zero time.
func FromMicros(us int64) time.Time { return fromMicros(us) }

// HashSecret is the stored form of a secret: its SHA-256, hex.
func HashSecret(secret string) string { return hashSecret(secret) }

// RandomToken is prefix followed by n random bytes, hex.
func RandomToken(prefix string, n int) string { return randomToken(prefix, n) }

// ScanColumn reads a one-column result and closes it.
func ScanColumn[T any](rows *sql.Rows) ([]T, error) { return scanColumn[T](rows) }

// Scanner is a result row to read: *sql.Row or *sql.Rows.
type Scanner = scanner

// ScanRows reads every row of a result with scan and closes it; no rows is
// an empty list.
func ScanRows[T any](rows *sql.Rows, scan func(Scanner) (T, error)) ([]T, error) {
	return scanRows(rows, scan)
}

// AffectedOne turns the result of an update of what into an error: err,
// or ErrNotFound when no row changed.
func AffectedOne(res sql.Result, err error, what string) error { return affectedOne(res, err, what) }
