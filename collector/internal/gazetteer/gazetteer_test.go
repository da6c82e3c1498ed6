package gazetteer

import (
	"errors"
	"math"
	"runtime"
	"testing"
)

func mustDefault(t testing.TB) *Gazetteer {
	t.Helper()
	g, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestLocate(t *testing.T) {
	g := mustDefault(t)
	tests := []struct {
		country, region, city string
		wantName, wantRegion  string
		lat, lon              float64
	}{
		{"US", "", "New York", "New York City", "NY", 40.71, -74.01},
		{"us", "New York", "new york city", "New York City", "NY", 40.71, -74.01},
		{"United States", "", "Los Angeles", "Los Angeles", "CA", 34.05, -118.24},
		{"KR", "", "Seoul", "Seoul", "11", 37.57, 126.98},
		{"South Korea", "", "seoul", "Seoul", "11", 37.57, 126.98},
		{"BR", "", "São Paulo", "São Paulo", "27", -23.55, -46.64},
		{"Brazil", "", "Sao Paulo", "São Paulo", "27", -23.55, -46.64},
		{"BRA", "SP", "SAO-PAULO", "São Paulo", "27", -23.55, -46.64},
		{"DE", "Bavaria", "MUNICH", "Munich", "02", 48.14, 11.58},
		{"US", "", "Saint Louis", "St. Louis", "MO", 38.63, -90.20},
		// Region disambiguation: the largest one by default, the declared
		// region's when given as a code, a name or an ISO 3166-2 code.
		{"US", "", "Portland", "Portland", "OR", 45.52, -122.68},
		{"US", "OR", "Portland", "Portland", "OR", 45.52, -122.68},
		{"US", "ME", "Portland", "Portland", "ME", 43.66, -70.26},
		{"US", "Maine", "Portland", "Portland", "ME", 43.66, -70.26},
		{"US", "US-ME", "Portland", "Portland", "ME", 43.66, -70.26},
		{"US", "IL", "Springfield", "Springfield", "IL", 39.80, -89.64},
		{"US", "Massachusetts", "Springfield", "Springfield", "MA", 42.10, -72.59},
		{"US", "", "Springfield", "Springfield", "MO", 37.22, -93.30},
		// An unknown region falls back to the largest match.
		{"US", "Narnia", "Portland", "Portland", "OR", 45.52, -122.68},
	}
	for _, tt := range tests {
		c, err := g.Locate(tt.country, tt.region, tt.city)
		if err != nil {
			t.Errorf("Locate(%q, %q, %q): %v", tt.country, tt.region, tt.city, err)
			continue
		}
		if c.Name != tt.wantName || c.RegionCode != tt.wantRegion ||
			math.Abs(c.Lat-tt.lat) > 0.02 || math.Abs(c.Lon-tt.lon) > 0.02 {
			t.Errorf("Locate(%q, %q, %q) = %+v, want %s (%s) at %.2f,%.2f",
				tt.country, tt.region, tt.city, c, tt.wantName, tt.wantRegion, tt.lat, tt.lon)
		}
	}
}

func TestLocateRegionName(t *testing.T) {
	g := mustDefault(t)
	c, err := g.Locate("US", "ME", "Portland")
	if err != nil {
		t.Fatal(err)
	}
	if c.Region != "Maine" || c.Country != "US" || c.Population <= 0 {
		t.Errorf("got %+v, want Region Maine, Country US and a population", c)
	}
}

func TestLocateErrors(t *testing.T) {
	g := mustDefault(t)

	_, err := g.Locate("Narnia", "", "Cair Paravel")
	if !errors.Is(err, ErrUnknownCountry) {
		t.Fatalf("unknown country: err = %v, want ErrUnknownCountry", err)
	}
	if want := `country "Narnia" is not an ISO 3166 code or country name`; err.Error() != want {
		t.Errorf("unknown country: %q, want %q", err, want)
	}

	_, err = g.Locate("US", "", "Springfeld")
	if !errors.Is(err, ErrUnknownCity) {
		t.Fatalf("unknown city: err = %v, want ErrUnknownCity", err)
	}
	if want := `city "Springfeld" not found in US; did you mean Springfield?`; err.Error() != want {
		t.Errorf("unknown city: %q, want %q", err, want)
	}
	var ce *UnknownCityError
	if !errors.As(err, &ce) || ce.Suggestion != "Springfield" || ce.Country != "US" {
		t.Errorf("unknown city: %#v", err)
	}

	_, err = g.Locate("FR", "", "Xqzzyvv")
	if want := `city "Xqzzyvv" not found in FR`; err == nil || err.Error() != want {
		t.Errorf("no suggestion: %v, want %q", err, want)
	}
	if _, err := g.Locate("US", "", "  "); !errors.Is(err, ErrUnknownCity) {
		t.Errorf("empty city: %v", err)
	}
	if _, err := g.Locate("", "", "Paris"); !errors.Is(err, ErrUnknownCountry) {
		t.Errorf("empty country: %v", err)
	}
	// A real country whose cities are all smaller than the threshold.
	if _, err := g.Locate("VA", "", "Vatican City"); !errors.Is(err, ErrUnknownCity) {
		t.Errorf("Vatican: %v", err)
	}
}

func TestCountryCode(t *testing.T) {
	g := mustDefault(t)
	for in, want := range map[string]string{
		"US": "US", "us": "US", "USA": "US", "United States": "US", "united states of america": "US",
		"U.S.": "US", "UK": "GB", "United Kingdom": "GB", "Great Britain": "GB", "England": "GB",
		"Germany": "DE", "DEU": "DE", "Côte d'Ivoire": "CI", "Cote dIvoire": "CI", "Ivory Coast": "CI",
		"South Korea": "KR", "Korea, Republic of": "KR", "Russia": "RU", "Viet Nam": "VN", "Vietnam": "VN",
		"The Netherlands": "NL", "Kosovo": "XK", "  japan ": "JP",
	} {
		got, ok := g.CountryCode(in)
		if !ok || got != want {
			t.Errorf("CountryCode(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "Narnia", "XX", "U", "Atlantis"} {
		if got, ok := g.CountryCode(in); ok {
			t.Errorf("CountryCode(%q) = %q, want not found", in, got)
		}
	}
}

func TestFold(t *testing.T) {
	for in, want := range map[string]string{
		"São Paulo":        "sao paulo",
		"  SAO-PAULO ":     "sao paulo",
		"St. John's":       "saint johns",
		"Zürich":           "zurich",
		"Łódź":             "lodz",
		"Straße":           "strasse",
		"Hồ Chí Minh City": "ho chi minh city",
		"Москва":           "москва",
	} {
		if got := fold(in); got != want {
			t.Errorf("fold(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoadedSize(t *testing.T) {
	g := mustDefault(t)
	n := g.Len()
	if n < 20000 || n > 200000 {
		t.Errorf("%d cities loaded", n)
	}
	if len(g.byCountry) < 200 {
		t.Errorf("%d countries with cities", len(g.byCountry))
	}
	t.Logf("%d cities in %d countries; embedded %d + %d + %d bytes",
		n, len(g.byCountry), len(citiesGz), len(regionsGz), len(countriesTSV))

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	h, err := load()
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("heap in use by one loaded gazetteer: about %.1f MiB", float64(after.HeapAlloc-before.HeapAlloc)/(1<<20))
	runtime.KeepAlive(h)
}

func BenchmarkLoad(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := load(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLocate(b *testing.B) {
	g := mustDefault(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Locate("United States", "Maine", "Portland"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLocateMiss(b *testing.B) {
	g := mustDefault(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Locate("US", "", "Springfeld"); err == nil {
			b.Fatal("found")
		}
	}
}

func FuzzLocate(f *testing.F) {
	g := mustDefault(f)
	f.Add("US", "OR", "Portland")
	f.Add("Brazil", "", "São Paulo")
	f.Add("", "", "")
	f.Add("the ", "us-", "st. ")
	f.Add("\xff\xfe", "\x00", "Ç\u0301 city")
	f.Fuzz(func(t *testing.T, country, region, city string) {
		c, err := g.Locate(country, region, city)
		if err == nil && (c.Name == "" || len(c.Country) != 2) {
			t.Errorf("Locate(%q, %q, %q) = %+v without an error", country, region, city, c)
		}
		if err != nil && err.Error() == "" {
			t.Error("empty error message")
		}
	})
}
