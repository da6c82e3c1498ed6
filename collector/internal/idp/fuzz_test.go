package idp

import (
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// fuzzParser feeds arbitrary documents to a parser, seeded with the
// provider's published example document (testdata): no input may panic,
// and every sign-in that comes out must be valid and within the caps.
func fuzzParser(f *testing.F, format string, parse func([]byte) (Parsed, error)) {
	seed, err := os.ReadFile(filepath.Join("testdata", format+".json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"value": null, "items": [null, {}, []]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parse(data)
		if err != nil {
			return
		}
		for _, si := range p.Signins {
			again := si
			if err := again.Validate(); err != nil || again != si {
				t.Fatalf("a parsed sign-in does not validate as it is: %+v: %v", si, err)
			}
			if si.Provider != format || len(si.UserAgent) > 512 || len(si.EventID) > 256 || !utf8.ValidString(si.UserAgent) {
				t.Fatalf("sign-in out of bounds: %+v", si)
			}
		}
	})
}

func FuzzParseOkta(f *testing.F)   { fuzzParser(f, Okta, ParseOkta) }
func FuzzParseEntra(f *testing.F)  { fuzzParser(f, Entra, ParseEntra) }
func FuzzParseGoogle(f *testing.F) { fuzzParser(f, Google, ParseGoogle) }
