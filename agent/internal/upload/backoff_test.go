package upload

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func busy(t *testing.T, after time.Duration) error {
	t.Helper()
	st, err := status.New(codes.ResourceExhausted, "busy").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(after)})
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}

// TestBackoffFullJitter: each wait lies in [0, min(Max, Base·2ⁿ)), the
// waits of agents with different sources differ (no two agents in step),
// and Reset starts over.
func TestBackoffFullJitter(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "down")
	const agents = 50
	var first [agents][]time.Duration
	for a := range agents {
		b := Backoff{Base: time.Second, Max: time.Minute, Rand: rand.New(rand.NewPCG(uint64(a), 1))}
		for n := range 12 {
			limit := min(time.Minute, time.Second<<n)
			d := b.Next(unavailable)
			if d < 0 || d >= limit {
				t.Fatalf("agent %d wait %d: %v, want in [0, %v)", a, n, d, limit)
			}
			first[a] = append(first[a], d)
		}
		b.Reset()
		if d := b.Next(unavailable); d >= time.Second {
			t.Fatalf("after Reset: %v, want < 1s", d)
		}
	}
	// Full jitter spreads the fleet: the agents' fifth waits (limit 16 s)
	// are not bunched (a draw from 50 uniform values has far more than 10
	// distinct seconds).
	seconds := map[time.Duration]bool{}
	for a := range agents {
		seconds[first[a][4].Truncate(time.Second)] = true
	}
	if len(seconds) < 10 {
		t.Fatalf("fifth waits fall in only %d distinct seconds: %v", len(seconds), seconds)
	}
	// The same seed gives the same waits (the source is the only randomness).
	b1 := Backoff{Base: time.Second, Max: time.Minute, Rand: rand.New(rand.NewPCG(7, 7))}
	b2 := Backoff{Base: time.Second, Max: time.Minute, Rand: rand.New(rand.NewPCG(7, 7))}
	for range 10 {
		if x, y := b1.Next(unavailable), b2.Next(unavailable); x != y {
			t.Fatalf("same seed, waits %v and %v", x, y)
		}
	}
}

// TestBackoffHonoursRetryAfter: a collector's retry-after hint is a floor,
// with jitter on top; an absurd hint is capped; wrapped errors keep it.
func TestBackoffHonoursRetryAfter(t *testing.T) {
	b := Backoff{Base: time.Second, Max: time.Minute, Rand: rand.New(rand.NewPCG(1, 2))}
	hint := 5 * time.Second
	spread := map[time.Duration]bool{}
	for n := range 20 {
		limit := min(time.Minute, time.Second<<n)
		d := b.Next(fmt.Errorf("enroll at x: %w", busy(t, hint)))
		if d < hint || d >= hint+max(hint, limit) {
			t.Fatalf("wait %d: %v, want in [%v, %v)", n, d, hint, hint+max(hint, limit))
		}
		spread[d] = true
	}
	if len(spread) < 15 {
		t.Fatalf("waits after a hint are not jittered: %v", spread)
	}
	if got := RetryAfter(busy(t, 365*24*time.Hour)); got != MaxRetryAfter {
		t.Fatalf("a year's hint: %v, want the cap %v", got, MaxRetryAfter)
	}
	if got := RetryAfter(busy(t, -time.Second)); got != 0 {
		t.Fatalf("negative hint: %v", got)
	}
	for _, err := range []error{nil, errors.New("plain"), status.Error(codes.ResourceExhausted, "no hint")} {
		if got := RetryAfter(err); got != 0 {
			t.Fatalf("RetryAfter(%v) = %v", err, got)
		}
	}
}

func TestStartDelay(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	seen := map[time.Duration]bool{}
	for range 100 {
		d := StartDelay(30*time.Second, r)
		if d < 0 || d >= 30*time.Second {
			t.Fatalf("start delay %v, want in [0, 30s)", d)
		}
		seen[d.Truncate(time.Second)] = true
	}
	if len(seen) < 20 {
		t.Fatalf("start delays bunched in %d seconds", len(seen))
	}
	if d := StartDelay(0, r); d != 0 {
		t.Fatalf("no start delay: %v", d)
	}
}
