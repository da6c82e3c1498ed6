package fsx

import (
	"testing"
	"testing/fstest"
)

func TestReadCapped(t *testing.T) {
	fsys := fstest.MapFS{"a": {Data: []byte("12345")}}
	if b, err := ReadCapped(fsys, "a", 5); err != nil || string(b) != "12345" {
		t.Fatalf("%q %v", b, err)
	}
	if _, err := ReadCapped(fsys, "a", 4); err == nil {
		t.Fatal("oversized file read")
	}
	if _, err := ReadCapped(fsys, "missing", 4); err == nil {
		t.Fatal("missing file read")
	}
}
