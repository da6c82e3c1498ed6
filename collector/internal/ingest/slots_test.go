package ingest

import (
	"fmt"
	"testing"
	"time"
)

// TestSlots: one key holds at most its share of the slots and all keys
// together at most all of them; a taker past either bound waits, gets a
// slot as soon as one is given back, or gives up when its wait is over.
func TestSlots(t *testing.T) {
	s := newSlots(4, 2)
	var held []func()
	for _, key := range []string{"a", "a", "b", "c"} {
		release, ok := s.take(key, time.Minute)
		if !ok {
			t.Fatalf("no slot for %s", key)
		}
		held = append(held, release)
	}
	// "a" has its share, and all slots are taken.
	if _, ok := s.take("a", 10*time.Millisecond); ok {
		t.Fatal("a third slot for a")
	}
	if _, ok := s.take("d", 10*time.Millisecond); ok {
		t.Fatal("a fifth slot in all")
	}
	// Waiters for "a" and "d" get slots as they are given back.
	got := make(chan string, 2)
	for _, key := range []string{"a", "d"} {
		go func() {
			if release, ok := s.take(key, time.Minute); ok {
				release()
				got <- key
			} else {
				got <- "none for " + key
			}
		}()
	}
	select {
	case k := <-got:
		t.Fatalf("%s got a slot before one was given back", k)
	case <-time.After(50 * time.Millisecond):
	}
	held[0]() // an "a"
	held[2]() // the "b"
	if k1, k2 := <-got, <-got; k1+k2 != "ad" && k1+k2 != "da" {
		t.Fatalf("waiters got %s and %s", k1, k2)
	}
	held[0]() // given back once only
	for _, r := range []func(){held[1], held[3]} {
		r()
	}
	if len(s.keys) != 0 || len(s.all) != 0 {
		t.Fatalf("after every slot was given back: keys %v, %d taken", s.keys, len(s.all))
	}
	// Many keys, each within its share: all slots, then no more.
	for i := range 4 {
		if _, ok := s.take(fmt.Sprint("k", i), time.Minute); !ok {
			t.Fatalf("no slot for k%d", i)
		}
	}
	if _, ok := s.take("k9", 10*time.Millisecond); ok {
		t.Fatal("a slot past the bound")
	}
}
