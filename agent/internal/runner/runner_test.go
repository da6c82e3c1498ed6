package runner

import (
	"testing"
	"time"
)

func TestBackoffGrowsWithJitterUpToLimit(t *testing.T) {
	var b backoff
	limit := 30 * time.Second
	for i := range 12 {
		d := b.next(limit)
		ceil := min(time.Second<<i, limit)
		if d < ceil/2 || d > ceil {
			t.Fatalf("attempt %d: %v outside [%v, %v]", i, d, ceil/2, ceil)
		}
	}
}

func TestIntervalPrecedence(t *testing.T) {
	if got := interval(time.Second, time.Minute, time.Hour); got != time.Second {
		t.Errorf("local override: %v", got)
	}
	if got := interval(0, time.Minute, time.Hour); got != time.Minute {
		t.Errorf("collector setting: %v", got)
	}
	if got := interval(0, 0, time.Hour); got != time.Hour {
		t.Errorf("default: %v", got)
	}
}
