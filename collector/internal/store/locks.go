package store

import (
	"context"
	"database/sql"
	"sync"
)

// Lease is a periodic job's lease: on PostgreSQL a session advisory lock
// that the replica which takes it keeps, on its own connection, from run to
// run. So the job runs on one replica, once per interval, not on each in
// turn; when the holder stops or dies its session ends, the lock with it,
// and another replica takes the lease at its next try, within one
// interval. With SQLite there is one collector, which always holds it.
type Lease struct {
	s   *Store
	key int64

	mu   sync.Mutex
	conn *sql.Conn // the session holding the lock; nil: not held
}

// Lease returns the lease of the job named by key (one key per job, shared
// by every replica).
func (s *Store) Lease(key int64) *Lease { return &Lease{s: s, key: key} }

// Hold reports whether this replica holds the lease, taking it when it is
// free. A holder whose session was lost (the database restarted, the
// connection broke) no longer holds it and tries to take it again.
func (l *Lease) Hold(ctx context.Context) (bool, error) {
	if l.s.dialect != Postgres {
		return true, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		var one int
		err := l.conn.QueryRowContext(ctx, "SELECT 1").Scan(&one)
		if err == nil {
			return true, nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		l.conn.Close()
		l.conn = nil
	}
	conn, err := l.s.w.Conn(ctx)
	if err != nil {
		return false, err
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", l.key).Scan(&ok); err != nil || !ok {
		conn.Close()
		return false, err
	}
	l.conn = conn
	return true, nil
}

// Release gives the lease up, for another replica to take.
func (l *Lease) Release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return
	}
	l.conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", l.key)
	l.conn.Close()
	l.conn = nil
}
