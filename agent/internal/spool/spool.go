// Package spool is the agent's durable on-disk queue of reports waiting for
// the collector.
//
// A report is stored before Enqueue returns and deleted only when the
// collector acknowledged it (Ack) or permanently rejected it (Reject), or
// when the spool is full and it is the oldest one (drop-oldest). Dropped
// reports are counted in a persisted counter that every later report
// carries to the collector.
//
// The spool is one bbolt file. Every change is a single bbolt transaction
// that also updates the counters, and bbolt commits by fsync and a
// double-buffered meta page, so a process killed at any moment leaves the
// file as it was after the last committed change.
//
// File layout (format 1), all integers big-endian uint64:
//
//	reports: sequence -> report, deterministic protobuf encoding
//	index:   report_id -> sequence
//	meta:    "format" -> 1, "next_sequence", "dropped", "bytes", "count"
package spool

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// DefaultMaxBytes bounds the queued payload when Open is given maxBytes <= 0.
const DefaultMaxBytes = 50 << 20

// lockTimeout is how long Open waits for another process to release the
// spool file.
const lockTimeout = time.Second

// formatVersion is the layout version written to the meta bucket.
const formatVersion = 1

var (
	// ErrTooLarge is returned by Enqueue for a report whose encoding alone
	// exceeds the spool's size bound.
	ErrTooLarge = errors.New("report larger than the spool limit")
	// ErrLocked is returned by Open when another process holds the spool
	// file (another bonafide-agent is running with the same state dir).
	ErrLocked = errors.New("spool is locked by another process")
	// ErrDuplicateID is returned by Enqueue for a report id already queued.
	ErrDuplicateID = errors.New("report id already queued")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("spool closed")
	// ErrFormat is returned by Open for a file written in a layout this
	// version does not know.
	ErrFormat = errors.New("unsupported spool format")
)

var (
	bucketReports = []byte("reports")
	bucketIndex   = []byte("index")
	bucketMeta    = []byte("meta")

	keyFormat  = []byte("format")
	keyNextSeq = []byte("next_sequence")
	keyDropped = []byte("dropped")
	keyBytes   = []byte("bytes")
	keyCount   = []byte("count")
)

// errNoop rolls back a write transaction that changed nothing, which saves
// the commit's fsync.
var errNoop = errors.New("no change")

var marshalOptions = proto.MarshalOptions{Deterministic: true}

// Spool is a durable, size-bounded FIFO of reports. It is safe for
// concurrent use. Only one process can hold a spool file open.
type Spool struct {
	path     string
	maxBytes int64
	db       *bolt.DB

	// wmu serialises write transactions with the publication of the
	// counters below, so that they always reflect the last commit.
	wmu    sync.Mutex
	closed bool // under wmu

	count   atomic.Int64
	bytes   atomic.Int64
	dropped atomic.Uint64
}

// state is the meta bucket, read and written inside one transaction.
type state struct {
	next    uint64 // sequence of the next enqueued report
	dropped uint64
	bytes   uint64
	count   uint64
}

// Open opens or creates the spool file (mode 0600; the directory must
// exist). maxBytes bounds the queued payload, the sum of the encoded
// reports; maxBytes <= 0 means DefaultMaxBytes. Open fails with ErrLocked
// when another process holds the file for more than a second.
func Open(path string, maxBytes int64) (*Spool, error) {
	return open(path, maxBytes, lockTimeout)
}

func open(path string, maxBytes int64, timeout time.Duration) (*Spool, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open spool %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open spool %s: %w", path, err)
	}
	if err := restrictMode(path); err != nil {
		db.Close()
		return nil, fmt.Errorf("open spool %s: %w", path, err)
	}
	var st state
	err = db.Update(func(tx *bolt.Tx) error {
		var err error
		st, err = initialize(tx)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open spool %s: %w", path, err)
	}
	s := &Spool{path: path, maxBytes: maxBytes, db: db}
	s.publish(st)
	return s, nil
}

// restrictMode makes a spool file created by someone else (or an older
// version) private again. Windows has no such mode bits.
func restrictMode(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	return os.Chmod(path, 0o600)
}

// initialize creates the buckets of a new file, checks the format of an
// existing one and reconciles the counters with the reports actually
// stored, so that a damaged meta bucket can neither wedge nor overflow the
// queue.
func initialize(tx *bolt.Tx) (state, error) {
	var st state
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return st, err
	}
	reports, err := tx.CreateBucketIfNotExists(bucketReports)
	if err != nil {
		return st, err
	}
	if _, err := tx.CreateBucketIfNotExists(bucketIndex); err != nil {
		return st, err
	}
	if v := meta.Get(keyFormat); v == nil {
		if err := meta.Put(keyFormat, u64(formatVersion)); err != nil {
			return st, err
		}
	} else if f := getU64(v); f != formatVersion {
		return st, fmt.Errorf("format %d: %w", f, ErrFormat)
	}
	st = readState(tx)
	var count, size, last uint64
	err = reports.ForEach(func(k, v []byte) error {
		count++
		size += uint64(len(v))
		if len(k) == 8 {
			last = max(last, getU64(k))
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	st.count, st.bytes = count, size
	st.next = max(st.next, last+1, 1)
	return st, writeState(tx, st)
}

// publish makes the counters of a committed state visible to Len, Bytes
// and Dropped.
func (s *Spool) publish(st state) {
	s.count.Store(int64(st.count))
	s.bytes.Store(int64(st.bytes))
	s.dropped.Store(st.dropped)
}

// update runs fn in a write transaction with the meta state, writes the
// state back and publishes it once committed. fn returning errNoop rolls
// back without error.
func (s *Spool) update(fn func(tx *bolt.Tx, st *state) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return ErrClosed
	}
	var st state
	err := s.db.Update(func(tx *bolt.Tx) error {
		st = readState(tx)
		if err := fn(tx, &st); err != nil {
			return err
		}
		return writeState(tx, st)
	})
	switch {
	case errors.Is(err, errNoop):
		return nil
	case err != nil:
		return err
	}
	s.publish(st)
	return nil
}

// Enqueue stores r durably at the tail of the queue. It assigns the next
// sequence number (starting at 1, increasing by one per enqueued report,
// never reused) to r.Sequence and the current dropped count to
// r.DroppedReports, and a random UUID to r.ReportId when it is empty. When
// the queue would exceed its bound it drops the oldest reports first; the
// dropped count r carries includes them. A report whose encoding alone
// exceeds the bound is refused with ErrTooLarge and a report id already
// queued with ErrDuplicateID; then nothing changes and r.Sequence and
// r.DroppedReports keep their values.
func (s *Spool) Enqueue(r *agentv1.Report) error {
	if r == nil {
		return errors.New("enqueue report: nil report")
	}
	if r.ReportId == "" {
		r.ReportId = newID()
	}
	oldSeq, oldDropped := r.Sequence, r.DroppedReports
	id := []byte(r.ReportId)
	limit := uint64(s.maxBytes)
	err := s.update(func(tx *bolt.Tx, st *state) error {
		reports, index := tx.Bucket(bucketReports), tx.Bucket(bucketIndex)
		if index.Get(id) != nil {
			return ErrDuplicateID
		}
		for {
			r.Sequence, r.DroppedReports = st.next, st.dropped
			b, err := marshalOptions.Marshal(r)
			if err != nil {
				return err
			}
			size := uint64(len(b))
			// Drop from the head until r fits. Each drop may lengthen
			// r's dropped_reports varint, so predict the size from the
			// counter rather than re-encoding r after every drop.
			for {
				grown := grownSize(size, r.DroppedReports, st.dropped)
				if grown > limit {
					// Rolled back: nothing is dropped for nothing.
					return fmt.Errorf("%d bytes, limit %d: %w", grown, limit, ErrTooLarge)
				}
				if st.bytes+grown <= limit {
					break
				}
				if err := dropOldest(reports, index, st); err != nil {
					return err
				}
			}
			if st.dropped != r.DroppedReports {
				continue // re-encode with the new count
			}
			key := u64(st.next)
			if err := reports.Put(key, b); err != nil {
				return err
			}
			if err := index.Put(id, key); err != nil {
				return err
			}
			st.next++
			st.count++
			st.bytes += size
			return nil
		}
	})
	if err != nil {
		r.Sequence, r.DroppedReports = oldSeq, oldDropped
		return fmt.Errorf("enqueue report %s: %w", r.ReportId, err)
	}
	return nil
}

// grownSize is the encoded size of a report of size bytes encoded with
// dropped_reports = from once re-encoded with dropped_reports = to.
func grownSize(size, from, to uint64) uint64 {
	return size - droppedFieldSize(from) + droppedFieldSize(to)
}

// droppedFieldSize is the size of Report.dropped_reports in the encoding:
// absent when zero (implicit presence).
func droppedFieldSize(v uint64) uint64 {
	if v == 0 {
		return 0
	}
	return uint64(protowire.SizeTag(4) + protowire.SizeVarint(v))
}

// dropOldest deletes the report at the head of the queue and counts it as
// dropped. On an empty bucket it zeroes the payload counters, which then
// were wrong, so the caller's loop ends.
func dropOldest(reports, index *bolt.Bucket, st *state) error {
	k, v := reports.Cursor().First()
	if k == nil {
		st.count, st.bytes = 0, 0
		return nil
	}
	st.dropped++
	return remove(reports, index, bytes.Clone(k), v, st)
}

// remove deletes the report v stored at key k and its index entry, and
// takes it off the counters.
func remove(reports, index *bolt.Bucket, k, v []byte, st *state) error {
	st.count = sub(st.count, 1)
	st.bytes = sub(st.bytes, uint64(len(v)))
	if id, ok := reportID(v); ok {
		if bytes.Equal(index.Get(id), k) {
			if err := index.Delete(id); err != nil {
				return err
			}
		}
	} else if err := unindex(index, k); err != nil {
		return err
	}
	return reports.Delete(k)
}

// unindex deletes the index entries pointing at key k. It scans the whole
// index and serves only reports too damaged to name their id.
func unindex(index *bolt.Bucket, k []byte) error {
	var ids [][]byte
	err := index.ForEach(func(id, seq []byte) error {
		if bytes.Equal(seq, k) {
			ids = append(ids, bytes.Clone(id))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := index.Delete(id); err != nil {
			return err
		}
	}
	return nil
}

// reportID reads field 1 (report_id) of an encoded Report without decoding
// the rest.
func reportID(b []byte) ([]byte, bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			id, n := protowire.ConsumeBytes(b)
			if n < 0 || len(id) == 0 {
				return nil, false
			}
			return id, true
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
	}
	return nil, false
}

// Peek returns up to n of the oldest reports, oldest first, whose encoded
// sizes add up to at most maxBytes (maxBytes <= 0: no limit). The first
// report is returned even when it alone is larger than maxBytes, so Peek
// returns at least one report whenever the queue holds one and n > 0.
// Reports stay queued until acknowledged.
//
// A stored entry that cannot be decoded is deleted and counted as dropped
// so that it cannot block the queue.
func (s *Spool) Peek(n int, maxBytes int) ([]*agentv1.Report, error) {
	if n <= 0 {
		return nil, nil
	}
	var (
		out    []*agentv1.Report
		broken [][]byte // keys of entries that do not decode
		stray  []*agentv1.Report
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		index := tx.Bucket(bucketIndex)
		c := tx.Bucket(bucketReports).Cursor()
		seen := make(map[string]bool)
		total := 0
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			r, ok := decode(k, v)
			if !ok || seen[r.ReportId] {
				broken = append(broken, bytes.Clone(k))
				continue
			}
			if maxBytes > 0 && len(out) > 0 && total+len(v) > maxBytes {
				break
			}
			seen[r.ReportId] = true
			if !bytes.Equal(index.Get([]byte(r.ReportId)), k) {
				stray = append(stray, r) // Ack could not find it
			}
			total += len(v)
			out = append(out, r)
		}
		return nil
	})
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return nil, ErrClosed
	}
	if err != nil {
		return nil, fmt.Errorf("peek spool: %w", err)
	}
	if len(broken) > 0 || len(stray) > 0 {
		if err := s.repair(broken, stray); err != nil {
			return nil, fmt.Errorf("repair spool: %w", err)
		}
	}
	return out, nil
}

// decode unmarshals the report stored at key k, which must carry that
// sequence and an id.
func decode(k, v []byte) (*agentv1.Report, bool) {
	if len(k) != 8 {
		return nil, false
	}
	r := new(agentv1.Report)
	// The clone keeps r independent of the memory map, which is only
	// valid during the transaction.
	if err := proto.Unmarshal(bytes.Clone(v), r); err != nil {
		return nil, false
	}
	if r.Sequence != getU64(k) || r.ReportId == "" {
		return nil, false
	}
	return r, true
}

// repair deletes the broken entries Peek found (still there and still
// broken), counting them as dropped, and points the index at the reports
// it did not lead to.
func (s *Spool) repair(broken [][]byte, stray []*agentv1.Report) error {
	return s.update(func(tx *bolt.Tx, st *state) error {
		reports, index := tx.Bucket(bucketReports), tx.Bucket(bucketIndex)
		changed := false
		for _, k := range broken {
			v := reports.Get(k)
			if v == nil {
				continue
			}
			if r, ok := decode(k, v); ok && bytes.Equal(index.Get([]byte(r.ReportId)), k) {
				continue // a duplicate id's first copy was acked meanwhile
			}
			if err := remove(reports, index, k, v, st); err != nil {
				return err
			}
			st.dropped++
			changed = true
		}
		for _, r := range stray {
			k := u64(r.Sequence)
			if reports.Get(k) == nil {
				continue
			}
			if err := index.Put([]byte(r.ReportId), k); err != nil {
				return err
			}
			changed = true
		}
		if !changed {
			return errNoop
		}
		return nil
	})
}

// Ack deletes the reports with these ids, which the collector stored.
// Ids not queued are ignored.
func (s *Spool) Ack(ids []string) error {
	if err := s.delete(ids, false); err != nil {
		return fmt.Errorf("ack reports: %w", err)
	}
	return nil
}

// Reject deletes the reports with these ids, which the collector
// permanently refused, and counts them as dropped. Ids not queued are
// ignored.
func (s *Spool) Reject(ids []string) error {
	if err := s.delete(ids, true); err != nil {
		return fmt.Errorf("reject reports: %w", err)
	}
	return nil
}

func (s *Spool) delete(ids []string, drop bool) error {
	if len(ids) == 0 {
		return nil
	}
	return s.update(func(tx *bolt.Tx, st *state) error {
		reports, index := tx.Bucket(bucketReports), tx.Bucket(bucketIndex)
		changed := false
		for _, id := range ids {
			k := index.Get([]byte(id))
			if k == nil {
				continue
			}
			k = bytes.Clone(k)
			if v := reports.Get(k); v != nil {
				st.count = sub(st.count, 1)
				st.bytes = sub(st.bytes, uint64(len(v)))
				if drop {
					st.dropped++
				}
				if err := reports.Delete(k); err != nil {
					return err
				}
			}
			if err := index.Delete([]byte(id)); err != nil {
				return err
			}
			changed = true
		}
		if !changed {
			return errNoop
		}
		return nil
	})
}

// Len returns the number of reports queued.
func (s *Spool) Len() int { return int(s.count.Load()) }

// Bytes returns the payload queued: the sum of the encoded reports' sizes.
func (s *Spool) Bytes() int64 { return s.bytes.Load() }

// Dropped returns how many reports were dropped since the spool file was
// created: the oldest ones when it was full, corrupt ones and the ones the
// collector rejected.
func (s *Spool) Dropped() uint64 { return s.dropped.Load() }

// Close closes the spool file, waiting for running calls to finish.
// Calling it again returns nil.
func (s *Spool) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close spool %s: %w", s.path, err)
	}
	return nil
}

func readState(tx *bolt.Tx) state {
	meta := tx.Bucket(bucketMeta)
	return state{
		next:    getU64(meta.Get(keyNextSeq)),
		dropped: getU64(meta.Get(keyDropped)),
		bytes:   getU64(meta.Get(keyBytes)),
		count:   getU64(meta.Get(keyCount)),
	}
}

func writeState(tx *bolt.Tx, st state) error {
	meta := tx.Bucket(bucketMeta)
	for _, kv := range []struct {
		k []byte
		v uint64
	}{
		{keyNextSeq, st.next},
		{keyDropped, st.dropped},
		{keyBytes, st.bytes},
		{keyCount, st.count},
	} {
		if err := meta.Put(kv.k, u64(kv.v)); err != nil {
			return err
		}
	}
	return nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// getU64 decodes a counter; a missing or malformed value reads as zero.
func getU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// newID returns a random (version 4) UUID.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
