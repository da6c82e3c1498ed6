package zone

import (
	"testing"
	"time"
)

// TestLoad: a zone loads as time.LoadLocation loads it, the second time
// from the cache (the same *time.Location), and a name that does not load
// fails every time and is not kept.
func TestLoad(t *testing.T) {
	want, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	l, err := Load("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	if l.String() != "America/Chicago" || at.In(l).Format(time.RFC3339) != at.In(want).Format(time.RFC3339) {
		t.Fatalf("Load gave %v: %v, want %v", l, at.In(l), at.In(want))
	}
	if again, _ := Load("America/Chicago"); again != l {
		t.Fatal("the second Load did not come from the cache")
	}
	for range 2 {
		if _, err := Load("Nowhere/Atlantis"); err == nil {
			t.Fatal("Load of an unknown zone did not fail")
		}
	}
	if _, ok := cache.Load("Nowhere/Atlantis"); ok {
		t.Fatal("an unknown zone was kept")
	}
}

func BenchmarkLoad(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load("America/Chicago"); err != nil {
			b.Fatal(err)
		}
	}
}
