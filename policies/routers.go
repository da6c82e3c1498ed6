package policies

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// RoutersFile is the routers catalog's path in the policies tree.
const RoutersFile = "catalog/routers.yaml"

// Router maker categories.
const (
	RouterCategoryTravel = "travel_router"
	RouterCategoryVPN    = "router_vpn"
)

// RoutersCatalog lists the makers of travel routers and router VPNs by
// their IEEE MAC prefixes. The collector matches every snapshot's default
// gateway MAC against it (MatchGateway).
type RoutersCatalog struct {
	// Version is the hex SHA-256 of the file (set by the loader).
	Version string        `yaml:"-"`
	Makers  []RouterMaker `yaml:"makers"`
}

// RouterMaker is one catalog entry.
type RouterMaker struct {
	ID       string `yaml:"id"`
	Name     string `yaml:"name"`
	Category string `yaml:"category"`
	// IEEEName is the organisation the IEEE registry assigned the
	// prefixes to, as the registry spells it (runs of spaces as one);
	// TestRoutersCatalogIEEE checks it against the registry.
	IEEEName string   `yaml:"ieee_name"`
	Sources  []string `yaml:"sources"`
	// Prefixes are IEEE assignments as colon-separated hex: 3 octets
	// (MA-L), 3 octets and a nibble (MA-M, "70:b3:d5:1") or 4 octets and a
	// nibble (MA-S).
	Prefixes []string `yaml:"prefixes"`
}

// ParseRouters decodes a routers catalog strictly and checks it.
func ParseRouters(b []byte) (*RoutersCatalog, error) {
	var c RoutersCatalog
	if err := decodeCatalog(b, "routers catalog", &c); err != nil {
		return nil, err
	}
	c.Version = catalogVersion(b)
	return &c, nil
}

// Routers loads the routers catalog from a policies tree.
func Routers(fsys fs.FS) (*RoutersCatalog, error) {
	b, err := fs.ReadFile(fsys, RoutersFile)
	if err != nil {
		return nil, err
	}
	return ParseRouters(b)
}

// Validate checks ids, categories, registry names, sources and prefixes (well-formed,
// MA-L/MA-M/MA-S length, not listed twice). All problems are reported
// together.
func (c *RoutersCatalog) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("routers catalog: "+format, args...)) }
	if len(c.Makers) == 0 {
		bad("no makers")
	}
	ids, prefixes := map[string]bool{}, map[string]string{}
	for i, m := range c.Makers {
		where := fmt.Sprintf("makers[%d] (%s)", i, m.ID)
		if !idRE.MatchString(m.ID) {
			bad("%s: id must match %s", where, idRE)
		}
		if ids[m.ID] {
			bad("%s: duplicate id", where)
		}
		ids[m.ID] = true
		if strings.TrimSpace(m.Name) == "" {
			bad("%s: name missing", where)
		}
		if m.Category != RouterCategoryTravel && m.Category != RouterCategoryVPN {
			bad("%s: category %q not travel_router or router_vpn", where, m.Category)
		}
		if strings.TrimSpace(m.IEEEName) == "" {
			bad("%s: ieee_name missing (the registry organisation of its prefixes)", where)
		}
		if len(m.Sources) == 0 {
			bad("%s: no sources", where)
		}
		if len(m.Prefixes) == 0 {
			bad("%s: no prefixes", where)
		}
		for _, p := range m.Prefixes {
			h, ok := macHex(p)
			if !ok || !slices.Contains([]int{6, 7, 9}, len(h)) || p != strings.ToLower(p) {
				bad("%s: prefix %q is not a lower-case MA-L, MA-M or MA-S prefix", where, p)
				continue
			}
			if other, dup := prefixes[h]; dup {
				bad("%s: prefix %q also listed under %s", where, p, other)
			}
			prefixes[h] = m.ID
		}
	}
	return errors.Join(errs...)
}

// macHex returns the hex digits of a colon- or dash-separated MAC or
// prefix, lower case, and whether it is well-formed: groups of two hex
// digits, the last may be one digit (a nibble).
func macHex(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || len(s) > 17 {
		return "", false
	}
	groups := strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == '-' })
	if strings.Count(s, ":")+strings.Count(s, "-") != len(groups)-1 {
		return "", false
	}
	var b strings.Builder
	for i, g := range groups {
		if len(g) != 2 && !(len(g) == 1 && i == len(groups)-1) {
			return "", false
		}
		for _, r := range g {
			if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
				return "", false
			}
		}
		b.WriteString(g)
	}
	return b.String(), true
}

// MatchGateway returns the maker whose prefix the gateway MAC starts with
// (the longest prefix wins), or nil. A malformed MAC, a locally
// administered or multicast one, or a nil catalog match nothing.
func MatchGateway(cat *RoutersCatalog, mac string) *agentv1.GatewayMaker {
	h, ok := macHex(mac)
	if cat == nil || !ok || len(h) != 12 {
		return nil
	}
	// Bit 0 of the first octet: multicast; bit 1: locally administered
	// (randomised), never an IEEE assignment.
	if first := h[1]; strings.IndexByte("0123456789abcdef", first)&0x3 != 0 {
		return nil
	}
	var best *agentv1.GatewayMaker
	bestLen := 0
	for _, m := range cat.Makers {
		for _, p := range m.Prefixes {
			ph, _ := macHex(p)
			if len(ph) > bestLen && strings.HasPrefix(h, ph) {
				best = &agentv1.GatewayMaker{Id: m.ID, Name: m.Name, Category: m.Category, Prefix: p}
				bestLen = len(ph)
			}
		}
	}
	return best
}
