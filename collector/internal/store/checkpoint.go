package store

import (
	"context"
	"database/sql"
	"time"
)

// SQLite commits a group's reports by appending its pages to the
// write-ahead log and syncing the log (synchronous=FULL). By default the
// committing connection also copies the log back into the database file
// whenever it has grown past 1,000 pages (an automatic checkpoint: the
// pages written again and two more syncs), inside the writer's serial
// section, while every caller of the group waits for its answer. Here a
// goroutine of its own does that copying instead (checkpointer), PASSIVE:
// it never waits for the writer or a reader, nor makes them wait, and what
// is durable does not change (a commit is durable once its log is synced).
//
// The log starts again from its beginning only when a writer finds it
// copied to its last page. A busy writer may keep appending while the
// checkpointer copies, so that never happens; the writer then checkpoints
// itself once the log passes walBackstop pages, which by then costs it
// little (what is left to copy), and the log starts again.
const (
	// checkpointEvery is how often the checkpointer looks for commits
	// to copy.
	checkpointEvery = 100 * time.Millisecond
	// walBackstop is the writer's automatic checkpoint, in pages
	// (wal_autocheckpoint).
	walBackstop = 10000
)

// checkpointer copies the write-ahead log of the SQLite database at path
// into the database file every checkpointEvery when anything was
// committed since it last did, on a connection of its own, until s.stop
// is closed.
func (s *Store) checkpointer(path string) {
	db, err := sql.Open("sqlite", "file:"+path+"?"+sqlitePragmas)
	if err != nil {
		s.log.Warn("checkpoint: open", "err", err)
		return
	}
	defer db.Close()
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	ctx := context.Background()
	var seen int64 = -1
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		// data_version changes when another connection commits.
		var v int64
		if err := db.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
			s.log.Warn("checkpoint: read data version", "err", err)
			continue
		}
		if v == seen {
			continue
		}
		var busy, frames, copied int64
		if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
			s.log.Warn("checkpoint", "err", err)
			continue
		}
		seen = v
	}
}
