package cases_test

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/cases"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// FuzzVerify feeds Verify outside bytes: it must return, never panic,
// and accept only what verifies. The seeds (run as an ordinary test) are
// a whole package, its halves and non-zip bytes.
func FuzzVerify(f *testing.F) {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	rec := &cases.Record{Format: cases.Format, GeneratedAt: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), GeneratedBy: "fuzz",
		Case: store.Case{ID: 1, Kind: store.CaseManual, Title: "<b>seed</b>", Status: store.CaseOpen}}
	pkg, err := cases.Export(rec, key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pkg.Zip)
	f.Add(pkg.Zip[:len(pkg.Zip)/2])
	f.Add(pkg.Zip[len(pkg.Zip)/2:])
	f.Add([]byte("PK\x05\x06" + string(make([]byte, 18))))
	f.Add([]byte("not a zip"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := cases.Verify(data, nil)
		if err == nil && len(v.Files) == 0 {
			t.Errorf("verified a package listing no file")
		}
	})
}
