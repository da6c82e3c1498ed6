package store

import (
	"context"
	"database/sql"
	"sync"
)

// maxCachedStmts bounds the prepared-statement cache; statements built at
// run time (multi-row inserts) bypass it.
const maxCachedStmts = 128

// stmtCache holds the writer's prepared statements, keyed by query text.
// A statement is prepared between transactions, never inside one: SQLite's
// writer pool has a single connection, which the transaction holds.
type stmtCache struct {
	mu      sync.Mutex
	stmts   map[string]*sql.Stmt
	pending map[string]bool
}

// cached returns the prepared statement for query, or nil after noting it
// for preparePending.
func (s *Store) cached(query string) *sql.Stmt {
	if s.dialect == Postgres {
		return nil // pgx caches prepared statements per connection itself
	}
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	if st, ok := s.stmts.stmts[query]; ok {
		return st
	}
	if len(s.stmts.stmts)+len(s.stmts.pending) < maxCachedStmts {
		if s.stmts.pending == nil {
			s.stmts.pending = map[string]bool{}
		}
		s.stmts.pending[query] = true
	}
	return nil
}

// preparePending prepares the statements noted since the last call; it
// must run outside any transaction. A statement that fails to prepare is
// left to run unprepared.
func (s *Store) preparePending(ctx context.Context) {
	s.stmts.mu.Lock()
	pending := s.stmts.pending
	s.stmts.pending = nil
	s.stmts.mu.Unlock()
	for q := range pending {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		s.stmts.mu.Lock()
		if s.stmts.stmts == nil {
			s.stmts.stmts = map[string]*sql.Stmt{}
		}
		if _, dup := s.stmts.stmts[q]; dup {
			st.Close()
		} else {
			s.stmts.stmts[q] = st
		}
		s.stmts.mu.Unlock()
	}
}

func (s *Store) closeStmts() {
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	for _, st := range s.stmts.stmts {
		st.Close()
	}
	s.stmts.stmts = nil
}

// wtx is a write transaction whose Exec/Query/QueryRow go through the
// prepared-statement cache on SQLite, which otherwise parses and plans
// every statement on every call (on the ingest path that costs more than
// running it). Queries are already in the dialect's form (s.q). The
// embedded *sql.Tx is there for statements that must not be cached.
type wtx struct {
	*sql.Tx
	s *Store
}

func (t wtx) stmt(ctx context.Context, query string) *sql.Stmt {
	if st := t.s.cached(query); st != nil {
		return t.Tx.StmtContext(ctx, st)
	}
	return nil
}

func (t wtx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

func (t wtx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

func (t wtx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}
