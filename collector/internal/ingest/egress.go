package ingest

import (
	"context"
	"net/netip"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/geo"
	"github.com/bonafide-sec/bonafide/collector/internal/proxyproto"
	"github.com/bonafide-sec/bonafide/policies"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// Egress statuses when the location is unknown.
const (
	EgressNoDatabase = "no GeoIP database loaded"
	EgressNotFound   = "address not in the GeoIP databases"
	EgressPrivate    = "private address"
)

// Locator says where an egress address is: GeoIP databases (nil: none
// loaded) and the networks catalog (with declared offices merged in).
type Locator struct {
	GeoIP    *geo.DB
	Networks *policies.NetworksCatalog
}

// Egress looks up an address. An unknown location is never a silent
// pass: Status says why.
func (l *Locator) Egress(ip netip.Addr) detect.Egress {
	e := detect.Egress{IP: ip.String(), Status: "ok", NetworkClass: "unknown"}
	if !ip.IsValid() {
		e.IP, e.Status = "", EgressNotFound
		return e
	}
	var loc geo.Location
	found := false
	switch {
	case l == nil || l.GeoIP == nil:
		e.Status = EgressNoDatabase
	default:
		if loc, found = l.GeoIP.Lookup(ip); !found {
			e.Status = EgressNotFound
		}
	}
	if found {
		e.Country, e.Region, e.City = loc.CountryCode, loc.Region, loc.City
		// Only a city's coordinates place a laptop: a country-only record
		// (a mobile carrier's, say) holds the country's centroid with an
		// accuracy of about 1,000 km, and distances or travel speeds
		// measured from it are noise.
		if loc.HasCoordinates && loc.City != "" {
			e.HasLocation, e.Latitude, e.Longitude = true, loc.Latitude, loc.Longitude
		}
		e.ASN, e.Org, e.TimeZone = int64(loc.ASN), loc.ASOrg, loc.TimeZone
	}
	if l != nil && l.Networks != nil {
		e.NetworkClass, e.NetworkName, _ = l.Networks.Classify(ip, loc.ASN, loc.ASOrg)
	}
	if e.NetworkClass == "private" && !found {
		e.Status = EgressPrivate
	}
	return e
}

// clientIP is the agent's address: the TCP peer (already rewritten by a
// trusted PROXY-protocol header), or the address a trusted proxy forwarded
// in x-forwarded-for / forwarded metadata.
func clientIP(ctx context.Context, trusted proxyproto.Trusted) netip.Addr {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return netip.Addr{}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	return proxyproto.ClientIP(p.Addr, md, trusted)
}

// addrString formats an address for the store ("" when unknown).
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().String()
}
