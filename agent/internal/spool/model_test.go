package spool

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// model is the spool's specification as a slice in memory.
type model struct {
	max     int64
	q       []*agentv1.Report // oldest first, as stored
	next    uint64
	dropped uint64
}

func (m *model) bytes() int64 {
	var n int64
	for _, r := range m.q {
		n += int64(proto.Size(r))
	}
	return n
}

func (m *model) find(id string) int {
	return slices.IndexFunc(m.q, func(r *agentv1.Report) bool { return r.ReportId == id })
}

// enqueue returns the report as the spool should store it, or the error
// Enqueue should return.
func (m *model) enqueue(in *agentv1.Report) (*agentv1.Report, error) {
	if m.find(in.ReportId) >= 0 {
		return nil, ErrDuplicateID
	}
	q, dropped, total := m.q, m.dropped, m.bytes()
	r := proto.Clone(in).(*agentv1.Report)
	for {
		r.Sequence, r.DroppedReports = m.next, dropped
		size := int64(proto.Size(r))
		if size > m.max {
			return nil, ErrTooLarge
		}
		if total+size <= m.max {
			break
		}
		total -= int64(proto.Size(q[0]))
		q = q[1:]
		dropped++
	}
	m.q = append(slices.Clone(q), r)
	m.dropped = dropped
	m.next++
	return r, nil
}

func (m *model) peek(n, maxBytes int) []*agentv1.Report {
	var out []*agentv1.Report
	total := 0
	for _, r := range m.q {
		if len(out) >= n {
			break
		}
		size := proto.Size(r)
		if maxBytes > 0 && len(out) > 0 && total+size > maxBytes {
			break
		}
		total += size
		out = append(out, r)
	}
	return out
}

func (m *model) remove(ids []string, drop bool) {
	for _, id := range ids {
		if i := m.find(id); i >= 0 {
			m.q = slices.Delete(m.q, i, i+1)
			if drop {
				m.dropped++
			}
		}
	}
}

// TestModel runs random operations against the spool and the model and
// compares them after each one.
func TestModel(t *testing.T) {
	const limit = 3000
	path := spoolPath(t)
	open := func() *Spool {
		s := mustOpen(t, path, limit)
		// Durability is the crash test's business; this one checks
		// bookkeeping, so skip the fsyncs.
		s.db.NoSync = true
		return s
	}
	s := open()
	m := &model{max: limit, next: 1}
	rng := rand.New(rand.NewPCG(20240611, 7))
	var gone []string // ids once queued, now acked, rejected or dropped

	// pick returns some queued ids, some gone and some unknown.
	pick := func() []string {
		var out []string
		for range rng.IntN(5) {
			switch x := rng.IntN(10); {
			case x < 7 && len(m.q) > 0:
				// Biased to the head, like a real uploader.
				out = append(out, m.q[min(rng.IntN(len(m.q)), rng.IntN(4))].ReportId)
			case x < 9 && len(gone) > 0:
				out = append(out, gone[rng.IntN(len(gone))])
			default:
				out = append(out, newID())
			}
		}
		return out
	}
	forget := func(before []*agentv1.Report) {
		for _, r := range before {
			if m.find(r.ReportId) < 0 {
				gone = append(gone, r.ReportId)
			}
		}
	}

	for op := range 3000 {
		before := slices.Clone(m.q)
		switch x := rng.IntN(100); {
		case x < 45:
			var pad int
			switch y := rng.IntN(50); {
			case y == 0:
				pad = limit - 100 + rng.IntN(200) // about the limit
			case y < 5:
				pad = 500 + rng.IntN(1500)
			default:
				pad = rng.IntN(300)
			}
			r := heartbeat(pad)
			if rng.IntN(50) == 0 && len(m.q) > 0 {
				r.ReportId = m.q[rng.IntN(len(m.q))].ReportId
			}
			want, wantErr := m.enqueue(r)
			err := s.Enqueue(r)
			switch {
			case wantErr != nil:
				if !errors.Is(err, wantErr) {
					t.Fatalf("op %d: Enqueue: %v, want %v", op, err, wantErr)
				}
			case err != nil:
				t.Fatalf("op %d: Enqueue: %v", op, err)
			case !proto.Equal(r, want):
				t.Fatalf("op %d: Enqueue set sequence %d dropped %d, want %d %d",
					op, r.Sequence, r.DroppedReports, want.Sequence, want.DroppedReports)
			}
		case x < 65:
			n := rng.IntN(12) - 1
			maxBytes := rng.IntN(2000) - 100
			got, err := s.Peek(n, maxBytes)
			if err != nil {
				t.Fatalf("op %d: Peek: %v", op, err)
			}
			want := m.peek(n, maxBytes)
			if len(got) != len(want) {
				t.Fatalf("op %d: Peek(%d, %d) = %v, want %v", op, n, maxBytes, sequences(got), sequences(want))
			}
			for i := range got {
				if !proto.Equal(got[i], want[i]) {
					t.Fatalf("op %d: Peek report %d = %v, want %v", op, i, got[i], want[i])
				}
			}
		case x < 80:
			ids := pick()
			m.remove(ids, false)
			if err := s.Ack(ids); err != nil {
				t.Fatalf("op %d: Ack: %v", op, err)
			}
		case x < 90:
			ids := pick()
			m.remove(ids, true)
			if err := s.Reject(ids); err != nil {
				t.Fatalf("op %d: Reject: %v", op, err)
			}
		case x < 95:
			if err := s.Close(); err != nil {
				t.Fatalf("op %d: Close: %v", op, err)
			}
			checkFile(t, path)
			s = open()
		default:
			checkDB(t, s.db)
		}
		forget(before)
		if s.Len() != len(m.q) || s.Bytes() != m.bytes() || s.Dropped() != m.dropped {
			t.Fatalf("op %d: Len %d Bytes %d Dropped %d, want %d %d %d",
				op, s.Len(), s.Bytes(), s.Dropped(), len(m.q), m.bytes(), m.dropped)
		}
		if s.Bytes() > limit {
			t.Fatalf("op %d: Bytes %d over the limit", op, s.Bytes())
		}
	}
	if m.dropped == 0 || m.next < 1000 {
		t.Fatalf("the run exercised too little: %d enqueued, %d dropped", m.next-1, m.dropped)
	}
	checkDB(t, s.db)
}
