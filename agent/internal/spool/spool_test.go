package spool

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// heartbeat returns a new report with a fresh id whose digest is pad bytes
// long, to vary its size.
func heartbeat(pad int) *agentv1.Report {
	return &agentv1.Report{
		ReportId:  newID(),
		CreatedAt: timestamppb.New(time.Unix(1_700_000_000, 0)),
		Body: &agentv1.Report_Heartbeat{Heartbeat: &agentv1.Heartbeat{
			SnapshotDigest: strings.Repeat("a", pad),
		}},
	}
}

func spoolPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "spool.db")
}

func mustOpen(t testing.TB, path string, maxBytes int64) *Spool {
	t.Helper()
	s, err := Open(path, maxBytes)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustEnqueue(t testing.TB, s *Spool, r *agentv1.Report) {
	t.Helper()
	if err := s.Enqueue(r); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
}

func peekAll(t testing.TB, s *Spool) []*agentv1.Report {
	t.Helper()
	got, err := s.Peek(math.MaxInt, 0)
	if err != nil {
		t.Fatalf("Peek: %v", err)
	}
	return got
}

func sequences(rs []*agentv1.Report) []uint64 {
	var out []uint64
	for _, r := range rs {
		out = append(out, r.Sequence)
	}
	return out
}

func ids(rs []*agentv1.Report) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ReportId)
	}
	return out
}

func encodedSize(t testing.TB, r *agentv1.Report) int64 {
	t.Helper()
	b, err := marshalOptions.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(b))
}

// checkFile verifies the invariants of a spool file that is not open
// elsewhere.
func checkFile(t testing.TB, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("open %s read-only: %v", path, err)
	}
	defer db.Close()
	checkDB(t, db)
}

// checkDB verifies that the meta counters match the stored reports, that
// every report decodes under its own sequence, and that the index maps
// exactly the stored reports' ids to their sequences.
func checkDB(t testing.TB, db *bolt.DB) {
	t.Helper()
	err := db.View(func(tx *bolt.Tx) error {
		st := readState(tx)
		var count, size, last uint64
		want := map[string][]byte{}
		err := tx.Bucket(bucketReports).ForEach(func(k, v []byte) error {
			r, ok := decode(k, v)
			if !ok {
				return fmt.Errorf("entry %x does not decode", k)
			}
			if _, dup := want[r.ReportId]; dup {
				return fmt.Errorf("id %s stored twice", r.ReportId)
			}
			want[r.ReportId] = bytes.Clone(k)
			count++
			size += uint64(len(v))
			last = r.Sequence
			return nil
		})
		if err != nil {
			return err
		}
		if st.count != count || st.bytes != size {
			return fmt.Errorf("meta count %d bytes %d, stored %d reports of %d bytes", st.count, st.bytes, count, size)
		}
		if st.next <= last || st.next == 0 {
			return fmt.Errorf("meta next sequence %d, last stored %d", st.next, last)
		}
		n := 0
		err = tx.Bucket(bucketIndex).ForEach(func(id, k []byte) error {
			n++
			if !bytes.Equal(want[string(id)], k) {
				return fmt.Errorf("index %s -> %x, stored at %x", id, k, want[string(id)])
			}
			return nil
		})
		if err != nil {
			return err
		}
		if n != len(want) {
			return fmt.Errorf("index has %d entries for %d reports", n, len(want))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("spool invariants: %v", err)
	}
}

func TestFIFOAndSequence(t *testing.T) {
	s := mustOpen(t, spoolPath(t), 0)
	var want []*agentv1.Report
	var size int64
	for i := range 10 {
		r := heartbeat(i * 10)
		mustEnqueue(t, s, r)
		if r.Sequence != uint64(i+1) {
			t.Fatalf("report %d got sequence %d", i, r.Sequence)
		}
		if r.DroppedReports != 0 {
			t.Fatalf("report %d carries dropped %d", i, r.DroppedReports)
		}
		want = append(want, proto.Clone(r).(*agentv1.Report))
		size += encodedSize(t, r)
	}
	got := peekAll(t, s)
	if len(got) != len(want) {
		t.Fatalf("Peek returned %d reports, want %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("report %d: got %v, want %v", i, got[i], want[i])
		}
	}
	if s.Len() != 10 || s.Bytes() != size || s.Dropped() != 0 {
		t.Errorf("Len %d Bytes %d Dropped %d, want 10 %d 0", s.Len(), s.Bytes(), s.Dropped(), size)
	}
	// Peek does not consume.
	if again := peekAll(t, s); len(again) != 10 {
		t.Errorf("second Peek returned %d reports", len(again))
	}
	checkDB(t, s.db)
}

func TestEnqueueAssignsID(t *testing.T) {
	s := mustOpen(t, spoolPath(t), 0)
	r := heartbeat(1)
	r.ReportId = ""
	mustEnqueue(t, s, r)
	if len(r.ReportId) != 36 {
		t.Fatalf("assigned id %q", r.ReportId)
	}
	if got := peekAll(t, s); len(got) != 1 || got[0].ReportId != r.ReportId {
		t.Fatalf("Peek = %v", ids(got))
	}
}

func TestEnqueueDuplicateID(t *testing.T) {
	s := mustOpen(t, spoolPath(t), 0)
	r := heartbeat(1)
	mustEnqueue(t, s, r)
	dup := heartbeat(2)
	dup.ReportId = r.ReportId
	err := s.Enqueue(dup)
	if !errors.Is(err, ErrDuplicateID) {
		t.Fatalf("Enqueue of a queued id: %v, want ErrDuplicateID", err)
	}
	if dup.Sequence != 0 || s.Len() != 1 {
		t.Fatalf("refused report got sequence %d, Len %d", dup.Sequence, s.Len())
	}
	// Once acked, the id may be queued again (the collector deduplicates).
	if err := s.Ack([]string{r.ReportId}); err != nil {
		t.Fatal(err)
	}
	mustEnqueue(t, s, dup)
	if dup.Sequence != 2 {
		t.Fatalf("sequence %d, want 2", dup.Sequence)
	}
}

func TestPersistence(t *testing.T) {
	path := spoolPath(t)
	s, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	var rs []*agentv1.Report
	for i := range 6 {
		r := heartbeat(i)
		mustEnqueue(t, s, r)
		rs = append(rs, r)
	}
	if err := s.Ack([]string{rs[0].ReportId, rs[2].ReportId}); err != nil {
		t.Fatal(err)
	}
	if err := s.Reject([]string{rs[1].ReportId}); err != nil {
		t.Fatal(err)
	}
	wantLen, wantBytes, wantDropped := s.Len(), s.Bytes(), s.Dropped()
	if wantLen != 3 || wantDropped != 1 {
		t.Fatalf("Len %d Dropped %d, want 3 1", wantLen, wantDropped)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Enqueue(heartbeat(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Enqueue after Close: %v", err)
	}
	if _, err := s.Peek(1, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Peek after Close: %v", err)
	}
	checkFile(t, path)

	s = mustOpen(t, path, 0)
	if s.Len() != wantLen || s.Bytes() != wantBytes || s.Dropped() != wantDropped {
		t.Fatalf("after reopen Len %d Bytes %d Dropped %d, want %d %d %d",
			s.Len(), s.Bytes(), s.Dropped(), wantLen, wantBytes, wantDropped)
	}
	if got := sequences(peekAll(t, s)); fmt.Sprint(got) != "[4 5 6]" {
		t.Fatalf("after reopen queued %v", got)
	}
	r := heartbeat(3)
	mustEnqueue(t, s, r)
	if r.Sequence != 7 || r.DroppedReports != 1 {
		t.Fatalf("after reopen sequence %d dropped %d, want 7 1", r.Sequence, r.DroppedReports)
	}

	// Sequences are not reused when the queue is empty at restart.
	if err := s.Ack(ids(peekAll(t, s))); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpen(t, path, 0)
	if s.Len() != 0 || s.Bytes() != 0 {
		t.Fatalf("empty spool reopened with Len %d Bytes %d", s.Len(), s.Bytes())
	}
	r = heartbeat(3)
	mustEnqueue(t, s, r)
	if r.Sequence != 8 {
		t.Fatalf("sequence %d after emptying, want 8", r.Sequence)
	}
}

func TestBound(t *testing.T) {
	path := spoolPath(t)
	probe := heartbeat(100)
	probe.Sequence, probe.DroppedReports = 1000, 1000
	one := encodedSize(t, probe)
	limit := 10*one + one/2 // room for ten reports, not eleven
	s := mustOpen(t, path, limit)

	const total = 100
	var last *agentv1.Report
	var prevDropped uint64
	for i := range total {
		r := heartbeat(100)
		mustEnqueue(t, s, r)
		if r.Sequence != uint64(i+1) {
			t.Fatalf("report %d got sequence %d", i, r.Sequence)
		}
		if s.Bytes() > limit {
			t.Fatalf("Bytes %d over the limit %d", s.Bytes(), limit)
		}
		if r.DroppedReports != s.Dropped() || r.DroppedReports < prevDropped {
			t.Fatalf("report %d carries dropped %d, spool %d, previous %d", i, r.DroppedReports, s.Dropped(), prevDropped)
		}
		prevDropped = r.DroppedReports
		last = r
	}
	// Every report is about one tenth of the limit, so the spool ends with
	// ten reports and dropped exactly the others.
	if s.Len() != 10 || s.Dropped() != total-10 {
		t.Fatalf("Len %d Dropped %d, want 10 and %d", s.Len(), s.Dropped(), total-10)
	}
	got := peekAll(t, s)
	if fmt.Sprint(sequences(got)) != fmt.Sprint([]uint64{91, 92, 93, 94, 95, 96, 97, 98, 99, 100}) {
		t.Fatalf("queued %v, want the ten newest", sequences(got))
	}
	if !proto.Equal(got[len(got)-1], last) {
		t.Fatalf("newest report differs")
	}
	if last.DroppedReports != total-10 {
		t.Fatalf("last report carries dropped %d, want %d", last.DroppedReports, total-10)
	}
	checkDB(t, s.db)
	s.Close()

	s = mustOpen(t, path, limit)
	if s.Dropped() != total-10 {
		t.Fatalf("Dropped after reopen %d", s.Dropped())
	}
	// A big report displaces as many as it needs.
	big := heartbeat(int(5 * one))
	mustEnqueue(t, s, big)
	if s.Bytes() > limit || s.Len() != 5 && s.Len() != 6 {
		t.Fatalf("after a big report Len %d Bytes %d", s.Len(), s.Bytes())
	}
	if big.DroppedReports != s.Dropped() || s.Dropped() != uint64(total+1-s.Len()) {
		t.Fatalf("big report carries %d, Dropped %d, Len %d", big.DroppedReports, s.Dropped(), s.Len())
	}
}

func TestTooLarge(t *testing.T) {
	s := mustOpen(t, spoolPath(t), 1000)
	small := heartbeat(10)
	mustEnqueue(t, s, small)
	huge := heartbeat(2000)
	huge.Sequence = 42
	if err := s.Enqueue(huge); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Enqueue of a report over the limit: %v, want ErrTooLarge", err)
	}
	if huge.Sequence != 42 {
		t.Fatalf("refused report's sequence changed to %d", huge.Sequence)
	}
	if s.Len() != 1 || s.Dropped() != 0 {
		t.Fatalf("refused report changed the spool: Len %d Dropped %d", s.Len(), s.Dropped())
	}
	next := heartbeat(10)
	mustEnqueue(t, s, next)
	if next.Sequence != 2 {
		t.Fatalf("sequence after a refusal %d, want 2", next.Sequence)
	}

	// A report that fits alone but not with the dropped count it would
	// carry after evicting the queue is refused without evicting anything.
	s2 := mustOpen(t, spoolPath(t), 0)
	mustEnqueue(t, s2, heartbeat(10))
	edge := heartbeat(120)
	edge.Sequence = 2
	// dropped_reports = 1 would add two bytes.
	s2.maxBytes = encodedSize(t, edge) + 1
	edge.Sequence = 0
	if err := s2.Enqueue(edge); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Enqueue: %v, want ErrTooLarge", err)
	}
	if s2.Len() != 1 || s2.Dropped() != 0 {
		t.Fatalf("refusal evicted: Len %d Dropped %d", s2.Len(), s2.Dropped())
	}
	checkDB(t, s2.db)
}

func TestAckReject(t *testing.T) {
	s := mustOpen(t, spoolPath(t), 0)
	var rs []*agentv1.Report
	for i := range 5 {
		r := heartbeat(i)
		mustEnqueue(t, s, r)
		rs = append(rs, r)
	}
	if err := s.Ack(nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack([]string{"not-there", rs[1].ReportId, rs[1].ReportId, rs[3].ReportId}); err != nil {
		t.Fatal(err)
	}
	if got := sequences(peekAll(t, s)); fmt.Sprint(got) != "[1 3 5]" {
		t.Fatalf("after Ack queued %v", got)
	}
	if s.Dropped() != 0 {
		t.Fatalf("Ack counted %d as dropped", s.Dropped())
	}
	// Rejecting an acked or unknown id counts nothing.
	if err := s.Reject([]string{rs[1].ReportId, "nope", rs[4].ReportId}); err != nil {
		t.Fatal(err)
	}
	if s.Dropped() != 1 || s.Len() != 2 {
		t.Fatalf("after Reject Dropped %d Len %d, want 1 2", s.Dropped(), s.Len())
	}
	if err := s.Ack([]string{rs[4].ReportId}); err != nil {
		t.Fatal(err)
	}
	want := encodedSize(t, rs[0]) + encodedSize(t, rs[2])
	if s.Bytes() != want {
		t.Fatalf("Bytes %d, want %d", s.Bytes(), want)
	}
	r := heartbeat(1)
	mustEnqueue(t, s, r)
	if r.DroppedReports != 1 || r.Sequence != 6 {
		t.Fatalf("next report carries dropped %d sequence %d", r.DroppedReports, r.Sequence)
	}
	checkDB(t, s.db)
}

func TestPeekLimits(t *testing.T) {
	s := mustOpen(t, spoolPath(t), 0)
	if got, err := s.Peek(10, 0); err != nil || len(got) != 0 {
		t.Fatalf("Peek on an empty spool: %v, %v", got, err)
	}
	var sizes []int
	for i := range 6 {
		r := heartbeat(100 * (i + 1))
		mustEnqueue(t, s, r)
		sizes = append(sizes, int(encodedSize(t, r)))
	}
	peek := func(n, maxBytes int) []uint64 {
		t.Helper()
		got, err := s.Peek(n, maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		return sequences(got)
	}
	for _, tc := range []struct {
		n, maxBytes int
		want        string
	}{
		{0, 0, "[]"},
		{-1, 0, "[]"},
		{1, 0, "[1]"},
		{4, 0, "[1 2 3 4]"},
		{100, 0, "[1 2 3 4 5 6]"},
		{100, sizes[0] + sizes[1], "[1 2]"}, // exactly fits
		{100, sizes[0] + sizes[1] + sizes[2] - 1, "[1 2]"},
		{1, sizes[0] + sizes[1], "[1]"}, // n wins
		{100, 1, "[1]"},                 // at least one
		{100, -5, "[1 2 3 4 5 6]"},      // no byte limit
	} {
		if got := fmt.Sprint(peek(tc.n, tc.maxBytes)); got != tc.want {
			t.Errorf("Peek(%d, %d) = %s, want %s", tc.n, tc.maxBytes, got, tc.want)
		}
	}
}

func TestLocked(t *testing.T) {
	path := spoolPath(t)
	s := mustOpen(t, path, 0)
	_, err := open(path, 0, 50*time.Millisecond)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
	s.Close()
	s2, err := open(path, 0, 50*time.Millisecond)
	if err != nil {
		t.Fatalf("open after Close: %v", err)
	}
	s2.Close()
}

func TestFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no POSIX file modes on Windows")
	}
	path := spoolPath(t)
	s := mustOpen(t, path, 0)
	s.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, path, 0)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("spool file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing", "spool.db"), 0); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(garbage, 0); err == nil {
		t.Error("Open of a non-database succeeded")
	}

	future := spoolPath(t)
	s := mustOpen(t, future, 0)
	s.Close()
	db, err := bolt.Open(future, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyFormat, u64(formatVersion+1))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(future, 0); !errors.Is(err, ErrFormat) {
		t.Errorf("Open of a newer format: %v, want ErrFormat", err)
	}
}

// tamper changes a closed spool file directly.
func tamper(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptEntryIsDropped(t *testing.T) {
	path := spoolPath(t)
	s := mustOpen(t, path, 0)
	var rs []*agentv1.Report
	for i := range 4 {
		r := heartbeat(i)
		mustEnqueue(t, s, r)
		rs = append(rs, r)
	}
	s.Close()
	garbage := []byte{0xff, 0xff, 0xff, 0xff}
	tamper(t, path, func(tx *bolt.Tx) error {
		reports := tx.Bucket(bucketReports)
		// Sequence 1: not protobuf at all.
		if err := reports.Put(u64(1), garbage); err != nil {
			return err
		}
		// Sequence 3: a valid report stored under the wrong sequence.
		wrong := proto.Clone(rs[2]).(*agentv1.Report)
		wrong.Sequence = 99
		b, err := marshalOptions.Marshal(wrong)
		if err != nil {
			return err
		}
		return reports.Put(u64(3), b)
	})

	s = mustOpen(t, path, 0)
	if s.Len() != 4 {
		t.Fatalf("Len %d, want 4 (corrupt entries still counted until seen)", s.Len())
	}
	got, err := s.Peek(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sequences(got)) != "[2]" {
		t.Fatalf("Peek(1) = %v, want [2]", sequences(got))
	}
	if s.Dropped() != 1 || s.Len() != 3 {
		t.Fatalf("after first Peek Dropped %d Len %d, want 1 3", s.Dropped(), s.Len())
	}
	if got := sequences(peekAll(t, s)); fmt.Sprint(got) != "[2 4]" {
		t.Fatalf("Peek = %v, want [2 4]", got)
	}
	if s.Dropped() != 2 || s.Len() != 2 {
		t.Fatalf("Dropped %d Len %d, want 2 2", s.Dropped(), s.Len())
	}
	want := encodedSize(t, rs[1]) + encodedSize(t, rs[3])
	if s.Bytes() != want {
		t.Fatalf("Bytes %d, want %d", s.Bytes(), want)
	}
	checkDB(t, s.db)
	r := heartbeat(1)
	mustEnqueue(t, s, r)
	if r.DroppedReports != 2 || r.Sequence != 5 {
		t.Fatalf("next report dropped %d sequence %d", r.DroppedReports, r.Sequence)
	}
}

func TestMissingIndexEntryIsRepaired(t *testing.T) {
	path := spoolPath(t)
	s := mustOpen(t, path, 0)
	r := heartbeat(5)
	mustEnqueue(t, s, r)
	s.Close()
	tamper(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketIndex).Delete([]byte(r.ReportId))
	})
	s = mustOpen(t, path, 0)
	if got := peekAll(t, s); len(got) != 1 {
		t.Fatalf("Peek = %v", ids(got))
	}
	if err := s.Ack([]string{r.ReportId}); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 0 || s.Dropped() != 0 {
		t.Fatalf("after Ack Len %d Dropped %d, want 0 0", s.Len(), s.Dropped())
	}
	checkDB(t, s.db)
}

func TestWrongMetaIsReconciled(t *testing.T) {
	path := spoolPath(t)
	s := mustOpen(t, path, 0)
	for i := range 3 {
		mustEnqueue(t, s, heartbeat(i))
	}
	wantBytes := s.Bytes()
	s.Close()
	tamper(t, path, func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		for _, kv := range [][2][]byte{
			{keyNextSeq, u64(2)},
			{keyBytes, u64(1 << 40)},
			{keyCount, []byte("junk")},
		} {
			if err := meta.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	})
	s = mustOpen(t, path, 0)
	if s.Len() != 3 || s.Bytes() != wantBytes {
		t.Fatalf("Len %d Bytes %d, want 3 %d", s.Len(), s.Bytes(), wantBytes)
	}
	r := heartbeat(1)
	mustEnqueue(t, s, r)
	if r.Sequence != 4 {
		t.Fatalf("sequence %d, want 4", r.Sequence)
	}
	checkDB(t, s.db)
}

func TestConcurrent(t *testing.T) {
	s := mustOpen(t, spoolPath(t), 0)
	const producers, perProducer = 4, 25
	const total = producers * perProducer

	var (
		mu        sync.Mutex
		enqueued  = map[string]uint64{}
		delivered = map[string]bool{}
		done      atomic.Int64 // distinct reports delivered
		wg        sync.WaitGroup
		errs      = make(chan error, producers+3)
	)
	for p := range producers {
		wg.Go(func() {
			for i := range perProducer {
				r := heartbeat(p*perProducer + i)
				if err := s.Enqueue(r); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				enqueued[r.ReportId] = r.Sequence
				mu.Unlock()
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for done.Load() < total {
				got, err := s.Peek(7, 2000)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					runtime.Gosched()
					continue
				}
				mu.Lock()
				for _, r := range got {
					if !delivered[r.ReportId] {
						delivered[r.ReportId] = true
						done.Add(1)
					}
				}
				mu.Unlock()
				if err := s.Ack(ids(got)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for done.Load() < total {
			if s.Len() < 0 || s.Bytes() < 0 || s.Dropped() != 0 {
				errs <- fmt.Errorf("Len %d Bytes %d Dropped %d", s.Len(), s.Bytes(), s.Dropped())
				return
			}
			runtime.Gosched()
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(enqueued) != total || len(delivered) != total {
		t.Fatalf("enqueued %d, delivered %d, want %d", len(enqueued), len(delivered), total)
	}
	seqs := map[uint64]bool{}
	for id, seq := range enqueued {
		if !delivered[id] {
			t.Errorf("report %s never delivered", id)
		}
		if seq < 1 || seq > total || seqs[seq] {
			t.Errorf("sequence %d out of range or reused", seq)
		}
		seqs[seq] = true
	}
	if s.Len() != 0 || s.Bytes() != 0 || s.Dropped() != 0 {
		t.Fatalf("at the end Len %d Bytes %d Dropped %d", s.Len(), s.Bytes(), s.Dropped())
	}
	checkDB(t, s.db)
}

func BenchmarkEnqueue(b *testing.B) {
	s := mustOpen(b, spoolPath(b), 0)
	edid := bytes.Repeat([]byte{0x5a}, 4000)
	probe := &agentv1.Report{
		ReportId: newID(),
		Body: &agentv1.Report_Snapshot{Snapshot: &agentv1.HostSnapshot{
			Displays: &agentv1.Displays{Displays: []*agentv1.Display{{Connector: "eDP-1", Edid: edid}}},
		}},
	}
	b.SetBytes(int64(proto.Size(probe)))
	b.ReportAllocs()
	for b.Loop() {
		r := proto.Clone(probe).(*agentv1.Report)
		r.ReportId = newID()
		if err := s.Enqueue(r); err != nil {
			b.Fatal(err)
		}
	}
}
