package policies

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// NetworksFile is the network-classification catalog's path in the
// policies tree; OfficesFile is the organisation's own list of office
// networks (same schema), merged on top of it when present.
const (
	NetworksFile = "catalog/networks.yaml"
	OfficesFile  = "allowlist/offices.yaml"
)

// Network classes.
const (
	NetClassHosting     = "hosting"     // cloud, VPS and data-centre networks
	NetClassVPN         = "vpn"         // commercial VPN egress
	NetClassMobile      = "mobile"      // mobile carriers (CGNAT, coarse geolocation)
	NetClassResidential = "residential" // listed consumer broadband ISPs
	NetClassOffice      = "office"      // the organisation's own networks
	NetClassCoworking   = "coworking"   // declared shared workspaces (many employers, one network)
	NetClassPrivate     = "private"     // non-routable address space
	NetClassUnknown     = "unknown"     // nothing matched (Classify only)
)

var netClasses = []string{NetClassHosting, NetClassVPN, NetClassMobile, NetClassResidential, NetClassOffice, NetClassCoworking, NetClassPrivate}

// Confidence levels of a catalog entry.
const (
	ConfidenceHigh   = "high"
	ConfidenceMedium = "medium"
	ConfidenceLow    = "low"
)

// NetworksCatalog classifies the network an egress address belongs to:
// by CIDR range (including the organisation's offices), by AS number, and
// by substrings of the AS organisation name, in that order of precedence.
type NetworksCatalog struct {
	// Version is the hex SHA-256 of the file (set by the loader; a merged
	// catalog's is the SHA-256 of both versions).
	Version     string          `yaml:"-"`
	ASNs        []NetworkASN    `yaml:"asns"`
	OrgPatterns []OrgPattern    `yaml:"org_patterns"`
	Ranges      []NetworkRange  `yaml:"ranges"`
	Offices     []OfficeNetwork `yaml:"offices"`

	idx *networkIndex
}

// NetworkASN classifies one autonomous system.
type NetworkASN struct {
	ASN        uint32   `yaml:"asn"`
	Name       string   `yaml:"name"`
	Class      string   `yaml:"class"`
	Confidence string   `yaml:"confidence"` // empty = high
	Sources    []string `yaml:"sources"`
	Notes      string   `yaml:"notes"`
}

// OrgPattern classifies an AS whose organisation name contains Pattern
// (case-insensitive). Patterns are tried in file order.
type OrgPattern struct {
	Pattern    string   `yaml:"pattern"`
	Class      string   `yaml:"class"`
	Confidence string   `yaml:"confidence"` // empty = high
	Sources    []string `yaml:"sources"`
	Notes      string   `yaml:"notes"`
}

// NetworkRange classifies a CIDR.
type NetworkRange struct {
	CIDR       string   `yaml:"cidr"`
	Name       string   `yaml:"name"`
	Class      string   `yaml:"class"`
	Confidence string   `yaml:"confidence"` // empty = high
	Sources    []string `yaml:"sources"`
	Notes      string   `yaml:"notes"`
}

// OfficeNetwork is an admin-declared office: its egress CIDRs classify as
// office, or as coworking when Kind is "coworking" (a shared workspace,
// whose network many people of other employers use too).
type OfficeNetwork struct {
	Name  string   `yaml:"name"`
	Kind  string   `yaml:"kind"` // office (default) or coworking
	CIDRs []string `yaml:"cidrs"`
	Notes string   `yaml:"notes"`
}

// class is the network class the office's CIDRs get.
func (o OfficeNetwork) class() string {
	if o.Kind == NetClassCoworking {
		return NetClassCoworking
	}
	return NetClassOffice
}

// ParseNetworks decodes a networks catalog strictly (unknown keys are
// errors) and checks it. An empty document is an empty catalog.
func ParseNetworks(b []byte) (*NetworksCatalog, error) {
	var c NetworksCatalog
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("networks catalog: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c.Version = catalogVersion(b)
	c.idx = c.index()
	return &c, nil
}

// Networks loads the networks catalog from a policies tree.
func Networks(fsys fs.FS) (*NetworksCatalog, error) {
	b, err := fs.ReadFile(fsys, NetworksFile)
	if err != nil {
		return nil, err
	}
	return ParseNetworks(b)
}

func validConfidence(s string) bool {
	return s == "" || s == ConfidenceHigh || s == ConfidenceMedium || s == ConfidenceLow
}

// parseCanonicalPrefix parses a CIDR and requires it to be written in
// canonical form (no host bits, no IPv4-mapped IPv6).
func parseCanonicalPrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q: write IPv4 networks as IPv4", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set (did you mean %s?)", s, p.Masked())
	}
	return p, nil
}

// Validate checks classes, CIDRs, confidence values and duplicates, and
// reports every problem found.
func (c *NetworksCatalog) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("networks catalog: "+format, args...))
	}
	checkSources := func(where string, s []string) {
		for _, src := range s {
			if strings.TrimSpace(src) == "" {
				bad("%s: empty source", where)
			}
		}
	}
	asns := map[uint32]bool{}
	for i, a := range c.ASNs {
		where := fmt.Sprintf("asns[%d] (AS%d)", i, a.ASN)
		if a.ASN == 0 {
			bad("asns[%d]: asn missing or 0", i)
		}
		if asns[a.ASN] {
			bad("%s: duplicate asn", where)
		}
		asns[a.ASN] = true
		if strings.TrimSpace(a.Name) == "" {
			bad("%s: no name", where)
		}
		if !slices.Contains(netClasses, a.Class) {
			bad("%s: class %q is not one of %v", where, a.Class, netClasses)
		}
		if !validConfidence(a.Confidence) {
			bad("%s: confidence %q", where, a.Confidence)
		}
		checkSources(where, a.Sources)
	}
	patterns := map[string]bool{}
	for i, p := range c.OrgPatterns {
		where := fmt.Sprintf("org_patterns[%d] (%q)", i, p.Pattern)
		key := strings.ToLower(strings.TrimSpace(p.Pattern))
		if len(key) < 3 {
			bad("%s: pattern shorter than 3 characters", where)
		}
		if patterns[key] {
			bad("%s: duplicate pattern", where)
		}
		patterns[key] = true
		if !slices.Contains(netClasses, p.Class) {
			bad("%s: class %q is not one of %v", where, p.Class, netClasses)
		}
		if !validConfidence(p.Confidence) {
			bad("%s: confidence %q", where, p.Confidence)
		}
		checkSources(where, p.Sources)
	}
	cidrs := map[netip.Prefix]string{}
	addCIDR := func(where, s string) {
		p, err := parseCanonicalPrefix(s)
		if err != nil {
			bad("%s: cidr: %v", where, err)
			return
		}
		if prev, dup := cidrs[p]; dup {
			bad("%s: cidr %s already listed in %s", where, p, prev)
		}
		cidrs[p] = where
	}
	for i, r := range c.Ranges {
		where := fmt.Sprintf("ranges[%d] (%s)", i, r.CIDR)
		addCIDR(where, r.CIDR)
		if !slices.Contains(netClasses, r.Class) {
			bad("%s: class %q is not one of %v", where, r.Class, netClasses)
		}
		if !validConfidence(r.Confidence) {
			bad("%s: confidence %q", where, r.Confidence)
		}
		checkSources(where, r.Sources)
	}
	for i, o := range c.Offices {
		where := fmt.Sprintf("offices[%d] (%s)", i, o.Name)
		if strings.TrimSpace(o.Name) == "" {
			bad("offices[%d]: no name", i)
		}
		if len(o.CIDRs) == 0 {
			bad("%s: no cidrs", where)
		}
		if o.Kind != "" && o.Kind != NetClassOffice && o.Kind != NetClassCoworking {
			bad("%s: kind %q is not office or coworking", where, o.Kind)
		}
		for _, s := range o.CIDRs {
			addCIDR(where, s)
		}
	}
	return errors.Join(errs...)
}

type indexedRange struct {
	prefix     netip.Prefix
	class      string
	name       string
	confidence string
	office     bool
}

type networkIndex struct {
	ranges   []indexedRange // longest prefix first; offices first on ties
	asns     map[uint32]NetworkASN
	patterns []OrgPattern // lower-cased
}

// index compiles the catalog; entries it cannot parse are skipped (Validate
// reports them).
func (c *NetworksCatalog) index() *networkIndex {
	idx := &networkIndex{asns: make(map[uint32]NetworkASN, len(c.ASNs))}
	for _, o := range c.Offices {
		for _, s := range o.CIDRs {
			if p, err := netip.ParsePrefix(s); err == nil {
				idx.ranges = append(idx.ranges, indexedRange{p.Masked(), o.class(), o.Name, ConfidenceHigh, true})
			}
		}
	}
	for _, r := range c.Ranges {
		if p, err := netip.ParsePrefix(r.CIDR); err == nil {
			idx.ranges = append(idx.ranges, indexedRange{p.Masked(), r.Class, r.Name, confidenceOr(r.Confidence), false})
		}
	}
	// Stable: among equal prefixes, the first listed wins (offices, then a
	// merged file's ranges before the base catalog's).
	slices.SortStableFunc(idx.ranges, func(a, b indexedRange) int { return b.prefix.Bits() - a.prefix.Bits() })
	for _, a := range c.ASNs {
		if _, dup := idx.asns[a.ASN]; !dup {
			idx.asns[a.ASN] = a
		}
	}
	for _, p := range c.OrgPatterns {
		p.Pattern = strings.ToLower(strings.TrimSpace(p.Pattern))
		if p.Pattern != "" {
			idx.patterns = append(idx.patterns, p)
		}
	}
	return idx
}

func confidenceOr(s string) string {
	if s == "" {
		return ConfidenceHigh
	}
	return s
}

// Classify says which kind of network ip (with the AS number and AS
// organisation a geo database gave for it; 0 and "" when unknown) belongs
// to. Precedence: the most specific matching range (offices win ties),
// then the AS number, then the first organisation pattern found in org.
// When nothing matches the class is NetClassUnknown and name and reason
// are empty. reason says what matched and, unless high, its confidence.
func (c *NetworksCatalog) Classify(ip netip.Addr, asn uint32, org string) (class, name, reason string) {
	if c == nil {
		return NetClassUnknown, "", ""
	}
	idx := c.idx
	if idx == nil {
		idx = c.index()
	}
	if ip.IsValid() {
		ip = ip.Unmap().WithZone("")
		for _, r := range idx.ranges {
			if r.prefix.Contains(ip) {
				what := "range"
				if r.office {
					what = "office network"
				}
				return r.class, r.name, withConfidence(fmt.Sprintf("%s %s (%s)", what, r.prefix, r.name), r.confidence)
			}
		}
	}
	if a, ok := idx.asns[asn]; ok && asn != 0 {
		return a.Class, a.Name, withConfidence(fmt.Sprintf("AS%d (%s)", a.ASN, a.Name), confidenceOr(a.Confidence))
	}
	if lo := strings.ToLower(org); lo != "" {
		for _, p := range idx.patterns {
			if strings.Contains(lo, p.Pattern) {
				return p.Class, org, withConfidence(fmt.Sprintf("AS organisation %q contains %q", org, p.Pattern), confidenceOr(p.Confidence))
			}
		}
	}
	return NetClassUnknown, "", ""
}

func withConfidence(reason, confidence string) string {
	if confidence == ConfidenceHigh {
		return reason
	}
	return reason + ", " + confidence + " confidence"
}

// Merge adds other's entries to c with precedence over c's own: an AS
// number both list takes other's entry, other's organisation patterns are
// tried first, and other's ranges win ties with c's. Offices are added.
// The result is re-indexed and its Version is the SHA-256 of both
// versions. Merge is not safe to call concurrently with Classify; merge
// before use.
func (c *NetworksCatalog) Merge(other *NetworksCatalog) {
	if c == nil || other == nil {
		return
	}
	asns := slices.Clone(other.ASNs)
	for _, a := range c.ASNs {
		if !slices.ContainsFunc(other.ASNs, func(o NetworkASN) bool { return o.ASN == a.ASN }) {
			asns = append(asns, a)
		}
	}
	c.ASNs = asns
	c.OrgPatterns = append(slices.Clone(other.OrgPatterns), c.OrgPatterns...)
	c.Ranges = append(slices.Clone(other.Ranges), c.Ranges...)
	c.Offices = append(slices.Clone(other.Offices), c.Offices...)
	sum := sha256.Sum256([]byte(c.Version + "\n" + other.Version))
	c.Version = hex.EncodeToString(sum[:])
	c.idx = c.index()
}
