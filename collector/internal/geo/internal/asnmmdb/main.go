// Command asnmmdb converts ip-location-db's ASN CSV files (npm package
// @ip-location-db/asn: "first,last,asn,organisation" per line, IPv4 or
// IPv6, RouteViews + DB-IP data under CC BY 4.0) into one MMDB file with
// the GeoLite2-ASN field names, which bonafide-collector --geoip reads.
// `make geoip` runs it:
//
//	go run ./collector/internal/geo/internal/asnmmdb -o asn.mmdb asn-ipv4.csv asn-ipv6.csv
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"go4.org/netipx"
)

func main() {
	out := flag.String("o", "asn.mmdb", "output MMDB file")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: asnmmdb -o OUT.mmdb FILE.csv...")
		os.Exit(2)
	}
	if err := run(*out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "asnmmdb:", err)
		os.Exit(1)
	}
}

func run(out string, files []string) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: "ip-location-db-asn",
		Description:  map[string]string{"en": "ASN data from @ip-location-db/asn (RouteViews and DB-IP, CC BY 4.0)"},
		RecordSize:   28,
		// The data has a few special-purpose ranges with an origin AS
		// (e.g. 192.88.99.0/24, 6to4 relays); keep them.
		IncludeReservedNetworks: true,
		// … and real AS data for 2001::/32 and 2002::/16, which would
		// otherwise alias IPv4.
		DisableIPv4Aliasing: true,
	})
	if err != nil {
		return err
	}
	n := 0
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		k, err := insertCSV(tree, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		n += k
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := tree.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	fmt.Printf("asnmmdb: %d ranges → %s\n", n, out)
	return f.Close()
}

// insertCSV inserts every "first,last,asn,organisation" line; a malformed
// line is an error naming it.
func insertCSV(tree *mmdbwriter.Tree, r io.Reader) (int, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 4
	n := 0
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		line, _ := cr.FieldPos(0)
		first, err1 := netip.ParseAddr(rec[0])
		last, err2 := netip.ParseAddr(rec[1])
		asn, err3 := strconv.ParseUint(rec[2], 10, 32)
		rng := netipx.IPRangeFrom(first, last)
		if err := errors.Join(err1, err2, err3); err != nil || !rng.IsValid() {
			return n, fmt.Errorf("line %d: not first,last,asn,organisation: %q", line, rec)
		}
		rec3 := mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(asn),
			"autonomous_system_organization": mmdbtype.String(rec[3]),
		}
		for _, p := range rng.Prefixes() {
			ipn := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
			if err := tree.Insert(ipn, rec3); err != nil {
				return n, fmt.Errorf("line %d: %w", line, err)
			}
		}
		n++
	}
}
