// Package geotest writes small MMDB databases for tests.
package geotest

import (
	"fmt"
	"net"
	"os"
	"slices"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Write builds an MMDB file at path with the given database type (e.g.
// "GeoLite2-City", "GeoLite2-ASN", "ip-location-db-city") and records keyed
// by CIDR ("127.0.1.0/24", "2001:db8::/32"). Record values use whatever
// schema the test wants: nested MaxMind maps or flat fields. Go values map
// to MMDB types as follows: string → utf8_string, float64 → double,
// float32 → float, bool → boolean, int / uint32 → uint32 (negative int →
// int32), uint16 → uint16, uint64 → uint64, []any / []string /
// []map[string]any → array, map[string]any / map[string]string → map.
//
// Reserved networks (127/8, 10/8, documentation ranges) are allowed, and
// broader networks are inserted before narrower ones so that the narrower
// record wins. Write fails the test on error.
func Write(t testing.TB, path string, dbType string, records map[string]map[string]any) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            dbType,
		Description:             map[string]string{"en": "bonafide test database " + dbType},
		Languages:               []string{"en"},
		IncludeReservedNetworks: true,
		RecordSize:              28,
	})
	if err != nil {
		t.Fatalf("geotest: new tree: %v", err)
	}
	type entry struct {
		net  *net.IPNet
		bits int
		key  string
	}
	var entries []entry
	for cidr := range records {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatalf("geotest: %q: %v", cidr, err)
		}
		ones, _ := n.Mask.Size()
		entries = append(entries, entry{n, ones, cidr})
	}
	slices.SortFunc(entries, func(a, b entry) int {
		if a.bits != b.bits {
			return a.bits - b.bits
		}
		if a.key < b.key {
			return -1
		}
		return 1
	})
	for _, e := range entries {
		v, err := toMMDB(records[e.key])
		if err != nil {
			t.Fatalf("geotest: %s: %v", e.key, err)
		}
		if err := tree.Insert(e.net, v); err != nil {
			t.Fatalf("geotest: insert %s: %v", e.key, err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("geotest: %v", err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		_ = f.Close()
		t.Fatalf("geotest: write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("geotest: close %s: %v", path, err)
	}
}

func toMMDB(v any) (mmdbtype.DataType, error) {
	switch x := v.(type) {
	case string:
		return mmdbtype.String(x), nil
	case float64:
		return mmdbtype.Float64(x), nil
	case float32:
		return mmdbtype.Float32(x), nil
	case bool:
		return mmdbtype.Bool(x), nil
	case int:
		if x < 0 {
			return mmdbtype.Int32(x), nil
		}
		return mmdbtype.Uint32(x), nil
	case uint32:
		return mmdbtype.Uint32(x), nil
	case uint16:
		return mmdbtype.Uint16(x), nil
	case uint64:
		return mmdbtype.Uint64(x), nil
	case []string:
		s := make(mmdbtype.Slice, len(x))
		for i, e := range x {
			s[i] = mmdbtype.String(e)
		}
		return s, nil
	case []map[string]any:
		s := make(mmdbtype.Slice, len(x))
		for i, e := range x {
			d, err := toMMDB(e)
			if err != nil {
				return nil, err
			}
			s[i] = d
		}
		return s, nil
	case []any:
		s := make(mmdbtype.Slice, len(x))
		for i, e := range x {
			d, err := toMMDB(e)
			if err != nil {
				return nil, err
			}
			s[i] = d
		}
		return s, nil
	case map[string]string:
		m := make(mmdbtype.Map, len(x))
		for k, e := range x {
			m[mmdbtype.String(k)] = mmdbtype.String(e)
		}
		return m, nil
	case map[string]any:
		m := make(mmdbtype.Map, len(x))
		for k, e := range x {
			d, err := toMMDB(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			m[mmdbtype.String(k)] = d
		}
		return m, nil
	}
	return nil, fmt.Errorf("unsupported value type %T", v)
}
