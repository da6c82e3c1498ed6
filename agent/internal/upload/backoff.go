package upload

import (
	"math/rand/v2"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
)

// Backoff spaces the retries of calls to the collector: exponential
// backoff with full jitter, so that agents failing together (a collector
// restart, an overload) do not come back together. The n-th wait is drawn
// uniformly from [0, min(Max, Base·2ⁿ)). When the collector said how long
// to wait (a RetryInfo detail, which it sends with ResourceExhausted), the
// wait is that hint plus a random part of up to the hint again (or of the
// backoff, when longer): never earlier than asked, and spread.
type Backoff struct {
	Base, Max time.Duration
	// Rand draws the jitter; nil draws from the global source.
	Rand *rand.Rand

	n int
}

// MaxRetryAfter caps the wait a collector can ask for.
const MaxRetryAfter = 10 * time.Minute

// Next returns how long to wait before retrying after err.
func (b *Backoff) Next(err error) time.Duration {
	d := b.Max
	if b.n < 32 && b.Base<<b.n > 0 && b.Base<<b.n < b.Max {
		d = b.Base << b.n
	}
	b.n++
	if hint := RetryAfter(err); hint > 0 {
		return hint + b.draw(max(hint, d))
	}
	return b.draw(d)
}

// Reset starts the backoff again (after a success).
func (b *Backoff) Reset() { b.n = 0 }

// draw is uniform in [0, d).
func (b *Backoff) draw(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	if b.Rand != nil {
		return time.Duration(b.Rand.Int64N(int64(d)))
	}
	return rand.N(d)
}

// RetryAfter is the wait the collector asked for in err's status details
// (a RetryInfo), capped at MaxRetryAfter; zero when it asked for none.
func RetryAfter(err error) time.Duration {
	if err == nil {
		return 0
	}
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return min(max(ri.GetRetryDelay().AsDuration(), 0), MaxRetryAfter)
		}
	}
	return 0
}

// StartDelay is a random wait in [0, limit) before an agent's first
// contact with the collector, so that agents started together (a rollout,
// a Monday-morning boot) spread out. r nil draws from the global source.
func StartDelay(limit time.Duration, r *rand.Rand) time.Duration {
	return (&Backoff{Rand: r}).draw(limit)
}
