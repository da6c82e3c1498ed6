// Package store keeps the collector's state in SQLite (the embedded default)
// or PostgreSQL (scale-out). One database/sql layer serves both engines;
// queries are written with ? placeholders and rebound for PostgreSQL.
// Times are stored as Unix microseconds in BIGINT columns on both engines.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

//go:embed migrations
var migrationFiles embed.FS

// ErrNotFound is returned when a requested row does not exist.
var ErrNotFound = errors.New("not found")

// Dialect names the database engine.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Store is the collector's database.
type Store struct {
	dialect Dialect
	w       *sql.DB // writes (a single connection on SQLite)
	r       *sql.DB // reads
	log     *slog.Logger
	places  Places    // locates people's declared cities; nil: not located
	stmts   stmtCache // the writer's (SQLite)
	rstmts  stmtCache // the read pool's (SQLite), see reader
	rows    rowCache  // devices' rows as the writer left them (SQLite)

	// Group commit of ingested reports (see Ingest), and the reports
	// judged before it (see prejudge).
	judging chan struct{}
	ingestQ chan *ingestReq
	// clusterQ takes the reports that may move their devices (see
	// startWriters); it is ingestQ when they share its writers.
	clusterQ chan *ingestReq
	stop     chan struct{}
	writers  sync.WaitGroup
	// Group commit of enrollments (see EnrollAgent).
	enrollQ chan *enrollReq
	// Reports received and not yet stored, by device: the sweep leaves
	// those devices to the report's own judgement (see Sweep).
	pendingMu sync.Mutex
	pending   map[string]int
	// oneTrips counts the groups stored in one round trip (PostgreSQL,
	// see storeInOneTrip), which tests read.
	oneTrips atomic.Int64
	// guarded counts the device UPDATEs guardedUpdate ran that applied
	// (SQLite), which tests read.
	guarded atomic.Int64
}

// sqlitePragmas are every SQLite connection's settings.
const sqlitePragmas = "_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)"

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open opens the database named by dsn: a postgres:// URL, or else the path
// of a SQLite file (created when missing). It applies pending migrations.
func Open(ctx context.Context, dsn string, log *slog.Logger) (*Store, error) {
	s := &Store{log: log}
	if IsPostgres(dsn) {
		s.dialect = Postgres
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(16)
		s.w, s.r = db, db
	} else {
		s.dialect = SQLite
		if err := os.MkdirAll(filepath.Dir(dsn), 0o700); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
		// The database holds every device's reports and the users' password
		// hashes: only the collector's user may read it. SQLite creates its
		// -wal and -shm files with the database file's mode.
		f, err := os.OpenFile(dsn, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create sqlite %s: %w", dsn, err)
		}
		f.Close()
		if err := os.Chmod(dsn, 0o600); err != nil {
			return nil, fmt.Errorf("sqlite %s: %w", dsn, err)
		}
		// The writer keeps its statement journals and savepoints' page
		// copies in memory: a group's transaction, with a savepoint per
		// batch, outgrew the default 64 KiB and wrote them to a
		// temporary file. Its log is copied into the database by the
		// checkpointer, not by its commits (see walBackstop).
		w, err := sql.Open("sqlite", "file:"+dsn+"?"+sqlitePragmas+"&_pragma=temp_store(MEMORY)"+
			"&_pragma=wal_autocheckpoint("+strconv.Itoa(walBackstop)+")&_txlock=immediate")
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
		}
		w.SetMaxOpenConns(1)
		r, err := sql.Open("sqlite", "file:"+dsn+"?"+sqlitePragmas)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("open sqlite %s: %w", dsn, err)
		}
		// Every connection of the pool stays open: a closed one is opened
		// again on the next burst, with its pragmas applied and its
		// statements prepared again (on the ingest path that cost more
		// than the reads themselves).
		r.SetMaxOpenConns(4)
		r.SetMaxIdleConns(4)
		s.w, s.r = w, r
	}
	if err := s.w.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("connect to %s database: %w", s.dialect, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if s.dialect == Postgres {
		s.startWriters(4, true)
	} else {
		s.startWriters(1, false)
		s.writers.Go(func() { s.checkpointer(dsn) })
	}
	s.enrollQ = make(chan *enrollReq)
	s.writers.Go(s.enrollWriter)
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	p, err := migrations(s.w, s.dialect)
	if err != nil {
		return err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	for _, r := range res {
		s.log.Info("applied migration", "version", r.Source.Version, "path", r.Source.Path)
	}
	return nil
}

// migrations are the migrations of dialect d, applied to db.
func migrations(db *sql.DB, d Dialect) (*goose.Provider, error) {
	dir, err := fs.Sub(migrationFiles, "migrations/"+string(d))
	if err != nil {
		return nil, err
	}
	gd := goose.DialectSQLite3
	if d == Postgres {
		gd = goose.DialectPostgres
	}
	p, err := goose.NewProvider(gd, db, dir, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// Dialect reports the engine in use.
func (s *Store) Dialect() Dialect { return s.dialect }

// Close closes the database.
func (s *Store) Close() error {
	if s.stop != nil {
		close(s.stop)
		s.writers.Wait()
	}
	s.closeStmts()
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// q rewrites ? placeholders to $n for PostgreSQL. Every statement goes
// through it, so it copies the text between placeholders whole ('?' is a
// single byte in UTF-8) into one allocation: rune by rune it cost 5 % of
// the collector's CPU on the ingest path.
func (s *Store) q(query string) string {
	if s.dialect != Postgres {
		return query
	}
	marks := strings.Count(query, "?")
	if marks == 0 {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 3*marks)
	for n := 1; ; n++ {
		i := strings.IndexByte(query, '?')
		if i < 0 {
			break
		}
		b.WriteString(query[:i])
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
		query = query[i+1:]
	}
	b.WriteString(query)
	return b.String()
}

// tx runs fn in a write transaction, then prepares the statements it (or
// a transaction before it) noted for the cache (see stmtCache). What it
// wrote may be what a cached device row was read from: it drops them all
// (see rowCache).
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	return s.txThen(ctx, fn, func(bool) { s.rows.drop() })
}

// txThen is tx calling committed, once the commit was tried, with whether
// it succeeded.
func (s *Store) txThen(ctx context.Context, fn func(*sql.Tx) error, committed func(ok bool)) error {
	return s.txOn(ctx, s.w, fn, committed)
}

// beginner begins transactions: the writer pool, or one connection of it
// (see tryGroup).
type beginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// txOn is txThen on db.
func (s *Store) txOn(ctx context.Context, db beginner, fn func(*sql.Tx) error, committed func(ok bool)) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer s.stmts.unbind(tx)
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	err = tx.Commit()
	committed(err == nil)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	s.preparePending(ctx)
	return nil
}

// exec runs one write statement outside a transaction, dropping the cached
// device rows as tx does when it names a table they are read from
// (frequent writes name none: outputs' cursors, replicas, tokens).
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if namesCachedTable(query) {
		defer s.rows.drop()
	}
	return s.w.ExecContext(ctx, s.q(query), args...)
}

// TryLock takes a fleet-wide job lock so that only one collector replica
// runs it at a time (a PostgreSQL session advisory lock). With SQLite there is
// only one collector and the lock always succeeds. The returned function
// releases it.
func (s *Store) TryLock(ctx context.Context, key int64) (bool, func(), error) {
	if s.dialect != Postgres {
		return true, func() {}, nil
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return false, nil, err
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil || !ok {
		conn.Close()
		return false, nil, err
	}
	return true, func() {
		conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock($1)", key)
		conn.Close()
	}, nil
}

// micros converts a time to the stored representation.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros converts a stored time back; 0 is the zero time.
func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}
