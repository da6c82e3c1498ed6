//go:build unix

package spool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// crashChildEnv names the spool file TestCrashChild works on; it is set only
// in the child processes TestCrashSafety starts.
const crashChildEnv = "BONAFIDE_SPOOL_CRASH_CHILD"

// TestCrashChild is the child process of TestCrashSafety: it enqueues
// reports of varied sizes and acks the oldest ones until it is killed,
// printing what it did after each call returned, and what it is about to
// ack before the call.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("helper process of TestCrashSafety")
	}
	s, err := Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A bound, so that a child the parent failed to kill ends.
	for i := range 100_000 {
		r := heartbeat((i * 997) % 9000) // some span several pages
		if err := s.Enqueue(r); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("enqueued %d %s\n", r.Sequence, r.ReportId)
		if i%4 != 3 {
			continue
		}
		head, err := s.Peek(2, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("acking %s\n", strings.Join(ids(head), " "))
		if err := s.Ack(ids(head)); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("acked %s\n", strings.Join(ids(head), " "))
	}
}

// TestCrashSafety kills a process writing to the spool with SIGKILL at
// arbitrary points and checks that no report it had been told was queued
// is lost, that nothing acked comes back, and that the file is consistent.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := spoolPath(t)
	var (
		seqOf    = map[string]uint64{} // printed "enqueued"
		idOf     = map[uint64]string{}
		acking   = map[string]bool{} // may be gone
		acked    = map[string]bool{} // must be gone
		maxSeq   uint64
		rng      = rand.New(rand.NewPCG(42, 4242))
		children = 6
	)
	for round := range children {
		killAfter := 1 + rng.IntN(120)
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		n, killed := 0, false
		for sc.Scan() {
			verb, rest, _ := strings.Cut(sc.Text(), " ")
			switch verb {
			case "enqueued":
				seqStr, id, _ := strings.Cut(rest, " ")
				seq, err := strconv.ParseUint(seqStr, 10, 64)
				if err != nil {
					t.Fatalf("child printed %q", sc.Text())
				}
				if _, dup := seqOf[id]; dup || idOf[seq] != "" {
					t.Fatalf("round %d: id %s or sequence %d enqueued twice", round, id, seq)
				}
				seqOf[id], idOf[seq] = seq, id
				maxSeq = max(maxSeq, seq)
				n++
			case "acking":
				for _, id := range strings.Fields(rest) {
					acking[id] = true
				}
			case "acked":
				for _, id := range strings.Fields(rest) {
					acked[id] = true
				}
			}
			if n == killAfter && !killed {
				// Keep reading: what the child printed before it died
				// counts too.
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		err = cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || !exit.Sys().(syscall.WaitStatus).Signaled() ||
			exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v before it was killed; stderr:\n%s", round, err, stderr.String())
		}

		checkFile(t, path)
		s, err := Open(path, 0)
		if err != nil {
			t.Fatalf("round %d: open after SIGKILL: %v", round, err)
		}
		queued := peekAll(t, s)
		if s.Len() != len(queued) || s.Dropped() != 0 {
			t.Fatalf("round %d: Len %d Dropped %d with %d queued", round, s.Len(), s.Dropped(), len(queued))
		}
		present := map[uint64]bool{}
		for i, r := range queued {
			if i > 0 && r.Sequence != queued[i-1].Sequence+1 {
				t.Fatalf("round %d: sequence %d follows %d", round, r.Sequence, queued[i-1].Sequence)
			}
			if acked[r.ReportId] {
				t.Fatalf("round %d: acked report %d is back", round, r.Sequence)
			}
			if want, ok := idOf[r.Sequence]; ok && want != r.ReportId {
				t.Fatalf("round %d: sequence %d holds %s, enqueued as %s", round, r.Sequence, r.ReportId, want)
			}
			present[r.Sequence] = true
		}
		for seq, id := range idOf {
			if !acking[id] && !present[seq] {
				t.Fatalf("round %d: report %d was enqueued and not acked, but is gone", round, seq)
			}
		}
		// At most the enqueue the child was in when killed is unprinted.
		if len(queued) > 0 {
			if last := queued[len(queued)-1].Sequence; last < maxSeq || last > maxSeq+1 {
				t.Fatalf("round %d: last queued %d, last printed %d", round, last, maxSeq)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: killed after %d enqueues; %d queued, sequences up to %d", round, n, len(queued), maxSeq)
	}
}
