package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// rowCache keeps each device's row (readDevice and what prejudge checks)
// as the last report the ingest writer stored left it, so that prejudge
// judges the device's next report without reading: on SQLite a reader
// connection discards its page cache whenever the WAL changed since its
// last read, which with hundreds of commits a second is on almost every
// read, and the statement itself cost as much again; on PostgreSQL the
// read was a round trip and some forty columns to scan per report.
//
// It only saves reads. The writer keeps a verdict reached on a cached row
// only when the device's version is still the one the row had (ingestOne),
// as with a row read from the database, so a row older than the device
// costs a re-evaluation and nothing else. What the version does not
// count is what readDevice reads of other devices' rows and of people
// (user names and peripherals shared, agents enrolled or revoked, people
// imported), which is why every write but the ingest writer's drops every
// row (drop), as does the ingest writer when it stored a device's user
// names or peripherals (othersChanged): they change what other devices
// read. So does a write by another process, seen as a change of the
// writer connection's data_version (checkCached). A row is kept only
// when nothing was dropped since it was read, and a verdict reached on a
// row dropped since is not kept (epoch).
//
// On PostgreSQL other replicas write the same rows, and nothing tells this
// one. Their writes to the device bump its version; those to what its row
// reads of other rows bump the fact stamp (migration 00046), which the
// row is read with (prejudgeRow.stamp) and which the report's write
// checks beside the version (foldStatement's kept, keepFacts): a verdict
// reached on a row read under another stamp is not kept, and the writer
// judges the report on facts it reads itself. The stamp also covers this
// process's own writes, so checkCached has nothing to do there; drop and
// othersChanged still spare the next reports a verdict that would miss.
type rowCache struct {
	mu    sync.Mutex
	epoch uint64
	rows  map[string]cachedRow
	// others says that the ingest writer's transaction changed what
	// other devices' rows are read from (see othersChanged).
	others bool
	// dataVersion is the writer connection's PRAGMA data_version when
	// last checked (0: never).
	dataVersion int64
}

// cachedTables are the tables readDevice reads, and alerts, whose
// triggers write the devices table (migration 00039).
var cachedTables = []string{"devices", "agents", "people", "device_users", "peripheral_shares", "clusters", "snapshots", "alerts"}

// namesCachedTable reports whether a statement names one of cachedTables
// (or a table whose name holds one: the test errs towards dropping).
func namesCachedTable(query string) bool {
	query = strings.ToLower(query)
	return slices.ContainsFunc(cachedTables, func(t string) bool { return strings.Contains(query, t) })
}

// cachedRow is a device's row at pre.version, and what its keys digest
// was found from (see prejudge).
type cachedRow struct {
	row  deviceRow
	pre  prejudgeRow
	keys keysInput
}

// keysInput is what a device's keys digest is made of (fleet.Keys): the
// snapshot keys (JSON), the egress address and its network class, and the
// sign-in keys (JSON).
type keysInput struct {
	snapKeys, egressIP, egressClass, signins, digest string
}

// maxCachedRows bounds the cache: a collector of 10,000 devices keeps
// them all (a few hundred bytes to a few KiB each).
const maxCachedRows = 20000

// get returns the device's cached row, if any, and the epoch to put a
// row read now back at.
func (c *rowCache) get(deviceID string) (cachedRow, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.rows[deviceID]
	return r, ok, c.epoch
}

// put keeps r for the device unless something was dropped since epoch.
func (c *rowCache) put(epoch uint64, deviceID string, r cachedRow) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return
	}
	if c.rows == nil {
		c.rows = map[string]cachedRow{}
	}
	if _, ok := c.rows[deviceID]; !ok && len(c.rows) >= maxCachedRows {
		for id := range c.rows { // any one: a map's order is random
			delete(c.rows, id)
			break
		}
	}
	c.rows[deviceID] = r
}

// forget forgets the device's row.
func (c *rowCache) forget(deviceID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.rows, deviceID)
}

// othersChanged notes that the ingest writer's transaction changed what
// other devices' rows are read from: the rows are dropped after it.
func (c *rowCache) othersChanged() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.others = true
}

// drop forgets every row, and every row read before now.
func (c *rowCache) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	clear(c.rows)
}

// storedGroup keeps, after a group of reports was committed (committed
// false: the commit failed), the rows its reports left: those of the
// reports stored with their prejudged verdict (prejudged.kept); it forgets
// the others' devices. It drops every row when the group changed what
// other devices' rows are read from, or its commit failed.
func (s *Store) storedGroup(group []*ingestReq, results []ingestResult, committed bool) {
	s.rows.mu.Lock()
	others := s.rows.others
	s.rows.others = false
	s.rows.mu.Unlock()
	if others || !committed {
		s.rows.drop()
		return
	}
	for i, r := range group {
		id := r.batch.Agent.DeviceID
		if results[i].err == nil && r.pre != nil && r.pre.kept && r.pre.next != nil && len(r.batch.Reports) == 1 {
			s.rows.put(r.pre.epoch, id, *r.pre.next)
		} else {
			s.rows.forget(id)
		}
	}
}

// checkCached, first in a group's transaction (SQLite), drops the cached
// rows when another process wrote to the database since the last group
// (the writer connection's data_version changed; the read pool never
// writes), and takes back the verdicts reached on a cached row dropped
// since: that row may lack a change the version does not count, so the
// writer judges those reports itself. PostgreSQL has no data_version,
// and needs none: the fact stamp and the version take back such verdicts
// (see rowCache).
func (s *Store) checkCached(ctx context.Context, tx wtx, group []*ingestReq) error {
	if s.dialect == Postgres {
		return nil
	}
	var v int64
	if err := tx.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
		return fmt.Errorf("data version: %w", err)
	}
	c := &s.rows
	c.mu.Lock()
	if v != c.dataVersion {
		c.dataVersion = v
		c.epoch++
		clear(c.rows)
	}
	epoch := c.epoch
	c.mu.Unlock()
	for _, r := range group {
		if r.pre != nil && r.pre.cached && r.pre.epoch != epoch {
			r.pre = nil
		}
	}
	return nil
}
