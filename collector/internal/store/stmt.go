package store

import (
	"context"
	"database/sql"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// maxCachedStmts bounds the prepared-statement cache; statements built at
// run time (multi-row inserts) bypass it.
const maxCachedStmts = 128

// stmtCache holds the writer's prepared statements, keyed by query text.
// A statement is prepared between transactions, never inside one: SQLite's
// writer pool has a single connection, which the transaction holds. The
// writer that committed prepares what is pending (Store.tx), so a fleet
// job prepares its own statements between its slices; left to the ingest
// writer, each would wait a slice for the connection while reports queued
// behind it.
type stmtCache struct {
	mu      sync.Mutex
	stmts   map[string]*sql.Stmt
	pending map[string]bool
	// bound are statements of stmts bound to the write transaction tx
	// (SQLite runs one at a time), by query text: binding one costs
	// database/sql a statement of the transaction, which it tracks and
	// closes when the transaction ends, and the reports of a group run
	// the same few statements each. A statement stays bound until another
	// transaction binds one, or txThen unbinds them when tx ends.
	tx    *sql.Tx
	bound map[string]*sql.Stmt
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
	for _, c := range []*stmtCache{&s.stmts, &s.rstmts} {
		c.mu.Lock()
		for _, st := range c.stmts {
			st.Close()
		}
		c.stmts = nil
		c.mu.Unlock()
	}
}

// wtx is a write transaction whose Exec/Query/QueryRow go through the
// prepared-statement cache on SQLite, which otherwise parses and plans
// every statement on every call (on the ingest path that costs more than
// running it). Queries are already in the dialect's form (s.q). The
// embedded *sql.Tx is there for statements that must not be cached.
type wtx struct {
	*sql.Tx
	s *Store
	// clusters says the transaction holds the cluster lock (lockClusters)
	// since before it locked any row, so that judging need not take it
	// again: on PostgreSQL that was a round trip more a report that moved
	// its device, inside the lock.
	clusters bool
	// conn is the transaction's connection when statements may be sent
	// on it together (pipeline; PostgreSQL's ingest writer), else nil.
	conn *sql.Conn
}

// resultRows are the rows of a statement's result, of database/sql or of
// a pipeline.
type resultRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// sent is a statement of a pipeline, its query in the dialect's form;
// read reads its rows (nil: it returns none that matter).
type sent struct {
	query string
	args  []any
	read  func(resultRows) error
}

// pipeline sends statements in one round trip on the transaction's
// connection (t.conn, which it needs; see foldAhead), and reads their
// results in their order. PostgreSQL runs them one after another, each
// seeing what the ones before it wrote.
func (t wtx) pipeline(ctx context.Context, stmts []sent) error {
	return sendAll(ctx, t.conn, stmts)
}

// send runs statements in their order, each read by its read: in one
// round trip when the transaction can send them together (pipeline), else
// one after another, each through the statement cache (see stmt).
func (t wtx) send(ctx context.Context, stmts []sent) error {
	if t.conn != nil && len(stmts) > 1 {
		return t.pipeline(ctx, stmts)
	}
	for _, st := range stmts {
		if st.read == nil {
			if _, err := t.ExecContext(ctx, st.query, st.args...); err != nil {
				return err
			}
			continue
		}
		rows, err := t.QueryContext(ctx, st.query, st.args...)
		if err != nil {
			return err
		}
		err = st.read(rows)
		rows.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// sendAll sends statements in one pgx batch on conn (PostgreSQL): one
// round trip, ending in one Sync. Inside a transaction they run in it;
// outside one, PostgreSQL runs them as one implicit transaction, committed
// at the Sync when every statement succeeded (storeInOneTrip).
func sendAll(ctx context.Context, conn *sql.Conn, stmts []sent) error {
	var batch pgx.Batch
	for _, st := range stmts {
		batch.Queue(st.query, st.args...)
	}
	return conn.Raw(func(dc any) error {
		br := dc.(*stdlib.Conn).Conn().SendBatch(ctx, &batch)
		for _, st := range stmts {
			if err := readSent(br, st); err != nil {
				br.Close()
				return err
			}
		}
		return br.Close()
	})
}

// oneRow reads a statement's one row into dest.
func oneRow(dest ...any) func(resultRows) error {
	return func(rows resultRows) error {
		if !rows.Next() {
			if err := rows.Err(); err != nil {
				return err
			}
			return sql.ErrNoRows
		}
		return rows.Scan(dest...)
	}
}

// readSent reads the result of st, the next statement of br.
func readSent(br pgx.BatchResults, st sent) error {
	if st.read == nil {
		_, err := br.Exec()
		return err
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	return st.read(rows)
}

func (t wtx) stmt(ctx context.Context, query string) *sql.Stmt {
	st := t.s.cached(query)
	if st == nil {
		return nil
	}
	c := &t.s.stmts
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tx != t.Tx {
		c.tx = t.Tx
		clear(c.bound)
	}
	if b, ok := c.bound[query]; ok {
		return b
	}
	if c.bound == nil {
		c.bound = map[string]*sql.Stmt{}
	}
	c.bound[query] = t.Tx.StmtContext(ctx, st)
	return c.bound[query]
}

// unbind forgets the statements bound to tx, which ended (database/sql
// closed them).
func (c *stmtCache) unbind(tx *sql.Tx) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tx == tx {
		c.tx = nil
		clear(c.bound)
	}
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

// reader is what reads outside the writer go through: on SQLite the read
// pool with each query prepared once (database/sql prepares it again on
// each connection the first time it runs there); pgx caches statements
// itself.
func (s *Store) reader() querier {
	if s.dialect == Postgres {
		return s.r
	}
	return readStmts{s}
}

type readStmts struct{ s *Store }

// prepared returns the read pool's statement for query, or nil (the
// cache is full, or preparing failed: the query then runs unprepared and
// meets the error itself). The caller holds no connection, so preparing
// here cannot wait for itself.
func (r readStmts) prepared(ctx context.Context, query string) *sql.Stmt {
	c := &r.s.rstmts
	c.mu.Lock()
	st, ok := c.stmts[query]
	full := len(c.stmts) >= maxCachedStmts
	c.mu.Unlock()
	if ok || full {
		return st
	}
	st, err := r.s.r.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.stmts[query]; ok {
		st.Close()
		return old
	}
	if c.stmts == nil {
		c.stmts = map[string]*sql.Stmt{}
	}
	c.stmts[query] = st
	return st
}

func (r readStmts) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := r.prepared(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return r.s.r.QueryContext(ctx, query, args...)
}

func (r readStmts) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := r.prepared(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return r.s.r.QueryRowContext(ctx, query, args...)
}
