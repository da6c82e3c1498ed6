package spool

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// fuzzSpool is a closed spool file holding three good reports (sequences
// 1 to 3), and the reports.
func fuzzSpool(t *testing.T) (string, []*agentv1.Report) {
	path := spoolPath(t)
	s, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	var rs []*agentv1.Report
	for i := range 3 {
		r := heartbeat(i)
		if err := s.Enqueue(r); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path, rs
}

// FuzzStoredRecord stores arbitrary bytes as a record of the reports
// bucket, under an arbitrary key, beside three good reports (as a damaged
// disk, another program or the laptop's owner could). Opening and reading
// the spool must not panic or fail; a record that does not decode under
// its own key is dropped and counted, and every good report is still
// delivered, in order.
func FuzzStoredRecord(f *testing.F) {
	good, err := marshalOptions.Marshal(&agentv1.Report{ReportId: "f3b1c2d4-0000-4000-8000-000000000001", Sequence: 7})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(u64(7), good)
	f.Add(u64(2), []byte{0xff, 0xff, 0xff, 0xff})
	f.Add(u64(0), []byte{})
	f.Add([]byte("short"), good)
	f.Add(u64(9), []byte{0x0a, 0x00})             // an empty report id
	f.Add(u64(9), []byte{0x0a, 0x80, 0x80, 0x80}) // a truncated length
	f.Fuzz(func(t *testing.T, key, value []byte) {
		if len(key) == 0 || len(key) > bolt.MaxKeySize || len(value) > 1<<20 {
			t.Skip()
		}
		path, rs := fuzzSpool(t)
		tamper(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketReports).Put(key, value) })
		_, valid := decode(key, value)

		s, err := Open(path, 0)
		if err != nil {
			t.Fatalf("Open with one odd record: %v", err)
		}
		defer s.Close()
		// Two passes: a record repeating a good report's id is delivered
		// once under the first key, and the later copy goes.
		var got []*agentv1.Report
		for range 2 {
			if got, err = s.Peek(100, 0); err != nil {
				t.Fatalf("Peek: %v", err)
			}
		}
		var delivered []string
		for i, r := range got {
			if i > 0 && r.Sequence <= got[i-1].Sequence {
				t.Fatalf("out of order: %v", sequences(got))
			}
			if slices.Contains(delivered, r.ReportId) {
				t.Fatalf("report %s delivered twice", r.ReportId)
			}
			delivered = append(delivered, r.ReportId)
		}
		for _, r := range rs {
			if bytes.Equal(key, u64(r.Sequence)) && !valid {
				continue // overwritten by the odd record
			}
			if !slices.Contains(delivered, r.ReportId) {
				t.Fatalf("good report %d lost; delivered %v", r.Sequence, sequences(got))
			}
		}
		if !valid && slices.ContainsFunc(got, func(r *agentv1.Report) bool {
			return bytes.Equal(u64(r.Sequence), key) && !slices.ContainsFunc(rs, func(g *agentv1.Report) bool { return proto.Equal(g, r) })
		}) {
			t.Fatalf("an undecodable record was delivered")
		}
		if s.Len() != len(got) {
			t.Fatalf("Len %d after reading %d reports", s.Len(), len(got))
		}
		checkDB(t, s.db)
		// The queue goes on.
		r := heartbeat(1)
		if err := s.Enqueue(r); err != nil {
			t.Fatalf("Enqueue after repair: %v", err)
		}
		if r.Sequence <= got[len(got)-1].Sequence {
			t.Fatalf("new report got sequence %d after %v", r.Sequence, sequences(got))
		}
	})
}

// FuzzStoredState stores arbitrary bytes as the spool's state (the meta
// bucket's format and counters). Opening must not panic: it either
// refuses the file with ErrFormat (a format it does not know) or
// reconciles the counters with the reports stored, keeps them all, and
// numbers the next report after them.
func FuzzStoredState(f *testing.F) {
	f.Add(u64(formatVersion), u64(4), u64(0), u64(100), u64(3))
	f.Add(u64(2), u64(0), u64(0), u64(0), u64(0))
	f.Add([]byte("junk"), []byte{}, []byte{1}, u64(1<<63), u64(1<<40))
	f.Add(u64(formatVersion), u64(1<<64-1), u64(1<<64-1), u64(1<<64-1), u64(1<<64-1))
	f.Fuzz(func(t *testing.T, format, next, dropped, size, count []byte) {
		path, rs := fuzzSpool(t)
		tamper(t, path, func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			for _, kv := range [][2][]byte{{keyFormat, format}, {keyNextSeq, next}, {keyDropped, dropped}, {keyBytes, size}, {keyCount, count}} {
				if err := meta.Put(kv[0], kv[1]); err != nil {
					return err
				}
			}
			return nil
		})
		s, err := Open(path, 0)
		if getU64(format) != formatVersion {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("format %x: Open = %v, want ErrFormat", format, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		if s.Len() != len(rs) {
			t.Fatalf("Len %d, want %d", s.Len(), len(rs))
		}
		got, err := s.Peek(100, 0)
		if err != nil || len(got) != len(rs) {
			t.Fatalf("Peek = %v, %v; want the %d reports", sequences(got), err, len(rs))
		}
		r := heartbeat(1)
		err = s.Enqueue(r)
		if getU64(next) == 1<<64-1 {
			// The sequence space is used up: refused, not wrapped.
			if err == nil && r.Sequence <= rs[len(rs)-1].Sequence {
				t.Fatalf("sequence wrapped to %d", r.Sequence)
			}
			return
		}
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		if r.Sequence <= rs[len(rs)-1].Sequence {
			t.Fatalf("new report got sequence %d after %d", r.Sequence, rs[len(rs)-1].Sequence)
		}
		checkDB(t, s.db)
	})
}
