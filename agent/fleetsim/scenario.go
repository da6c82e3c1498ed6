package main

// The simulated world, in one place: the places people live in, the
// networks the laptops egress from, and the groups of devices.
//
// Every address is in 127.0.0.0/8 so that each simulated network is a real
// source address on Linux (any 127/8 address can be bound without setup).
// One /16 per kind of network keeps the classification in offices.yaml
// simple:
//
//	127.10.0.0/16  offices            (one /24 per office, one egress address)
//	127.20.0.0/16  coworking spaces
//	127.30.0.0/16  residential ISPs   (homes, the household, the farm, hotels)
//	127.40.0.0/16  mobile carrier     (CGNAT: many subscribers, one address)
//	127.50.0.0/16  commercial VPN exits

// place is a city: where a person is declared (people.csv) and where the
// GeoIP database puts a network.
type place struct {
	City, Region, Country, TZ string
	Lat, Lon                  float64
}

// Cities. Declared cities must exist in the collector's gazetteer (GeoNames
// places of at least 15,000 inhabitants).
var (
	newYork      = place{"New York", "NY", "US", "America/New_York", 40.7143, -74.0060}
	austin       = place{"Austin", "TX", "US", "America/Chicago", 30.2672, -97.7431}
	chicago      = place{"Chicago", "IL", "US", "America/Chicago", 41.8500, -87.6501}
	denver       = place{"Denver", "CO", "US", "America/Denver", 39.7392, -104.9847}
	seattle      = place{"Seattle", "WA", "US", "America/Los_Angeles", 47.6062, -122.3321}
	boston       = place{"Boston", "MA", "US", "America/New_York", 42.3584, -71.0598}
	atlanta      = place{"Atlanta", "GA", "US", "America/New_York", 33.7490, -84.3880}
	miami        = place{"Miami", "FL", "US", "America/New_York", 25.7743, -80.1937}
	phoenix      = place{"Phoenix", "AZ", "US", "America/Phoenix", 33.4484, -112.0740}
	portland     = place{"Portland", "OR", "US", "America/Los_Angeles", 45.5235, -122.6762}
	sanDiego     = place{"San Diego", "CA", "US", "America/Los_Angeles", 32.7157, -117.1647}
	minneapolis  = place{"Minneapolis", "MN", "US", "America/Chicago", 44.9800, -93.2638}
	philadelphia = place{"Philadelphia", "PA", "US", "America/New_York", 39.9523, -75.1638}
	nashville    = place{"Nashville", "TN", "US", "America/Chicago", 36.1659, -86.7844}
	saltLake     = place{"Salt Lake City", "UT", "US", "America/Denver", 40.7608, -111.8911}
	dallas       = place{"Dallas", "TX", "US", "America/Chicago", 32.7831, -96.8067}
	sanFrancisco = place{"San Francisco", "CA", "US", "America/Los_Angeles", 37.7749, -122.4194}
	raleigh      = place{"Raleigh", "NC", "US", "America/New_York", 35.7721, -78.6386}
	pittsburgh   = place{"Pittsburgh", "PA", "US", "America/New_York", 40.4406, -79.9959}
	detroit      = place{"Detroit", "MI", "US", "America/Detroit", 42.3314, -83.0458}

	// GeoIP-only places (never declared).
	litchfieldPark = place{"Litchfield Park", "AZ", "US", "America/Phoenix", 33.4934, -112.3579}
	lasVegas       = place{"Las Vegas", "NV", "US", "America/Los_Angeles", 36.1750, -115.1372}
	orlando        = place{"Orlando", "FL", "US", "America/New_York", 28.5383, -81.3792}
	losAngeles     = place{"Los Angeles", "CA", "US", "America/Los_Angeles", 34.0522, -118.2437}
	// usOnly is a mobile carrier's coarse location: the country, no city.
	usOnly = place{Country: "US", TZ: "America/Chicago", Lat: 37.751, Lon: -97.822}
)

// homeCities are where remote workers live; each city has a /22 of home
// addresses in 127.30.0.0/16 (127.30.10.0/22 for the first, then every 4th
// /24), geolocated to the city.
var homeCities = []place{chicago, denver, seattle, boston, atlanta, miami, phoenix, portland, sanDiego,
	minneapolis, philadelphia, nashville, saltLake, dallas, sanFrancisco, raleigh, pittsburgh, detroit}

// site is a network devices egress from: one egress (public) address, one
// gateway (router) on the LAN side and its Wi-Fi.
type site struct {
	Name   string
	Class  string // office, coworking, residential, mobile, vpn: what offices.yaml and the catalog say
	CIDR   string // the GeoIP record's network
	Egress string // the address every device at this site dials from
	Place  place  // where the GeoIP database puts it
	ASN    uint32
	ASOrg  string
	// LAN is the private /24 prefix behind the router, e.g. "10.20.0";
	// devices get .20 onwards, the router is .1.
	LAN  string
	SSID string
	APs  int // Wi-Fi access points (BSSIDs); an office has several
}

// Sites shared by several devices. Home sites (one per remote worker) are
// made by homeSite.
var (
	siteHQ = site{Name: "HQ New York", Class: "office", CIDR: "127.10.0.0/24", Egress: "127.10.0.1", Place: newYork,
		ASN: 3356, ASOrg: "LEVEL3", LAN: "10.20.0", SSID: "Northwind-Corp", APs: 6}
	siteAustin = site{Name: "Austin office", Class: "office", CIDR: "127.10.1.0/24", Egress: "127.10.1.1", Place: austin,
		ASN: 3356, ASOrg: "LEVEL3", LAN: "10.21.0", SSID: "Northwind-Corp", APs: 3}
	siteCowork = site{Name: "Larimer Street Coworking Denver", Class: "coworking", CIDR: "127.20.0.0/24", Egress: "127.20.0.1", Place: denver,
		ASN: 7922, ASOrg: "COMCAST-7922", LAN: "172.16.8", SSID: "Larimer-Members", APs: 1}
	siteHousehold = site{Name: "household (two employees, Chicago)", Class: "residential", CIDR: "127.30.200.0/24", Egress: "127.30.200.1", Place: chicago,
		ASN: 7922, ASOrg: "COMCAST-7922", LAN: "192.168.0", SSID: "Rivera-Home", APs: 1}
	siteFarm = site{Name: "THE FARM (Litchfield Park, AZ)", Class: "residential", CIDR: "127.30.210.0/24", Egress: "127.30.210.7", Place: litchfieldPark,
		ASN: 209, ASOrg: "CENTURYLINK-US-LEGACY-QWEST", LAN: "192.168.1", SSID: "NETGEAR47", APs: 1}
	siteMobile = site{Name: "mobile carrier CGNAT", Class: "mobile", CIDR: "127.40.0.0/24", Egress: "127.40.0.1", Place: usOnly,
		ASN: 21928, ASOrg: "T-MOBILE-AS21928", LAN: "172.20.10", SSID: "iPhone", APs: 1}
	siteVPN = site{Name: "commercial VPN exit", Class: "vpn", CIDR: "127.50.0.0/24", Egress: "127.50.0.1", Place: losAngeles,
		ASN: 9009, ASOrg: "M247 Europe SRL", LAN: "192.168.1", SSID: "home", APs: 1}
	hotels = []site{
		{Name: "hotel Wi-Fi Las Vegas", Class: "residential", CIDR: "127.30.220.0/24", Egress: "127.30.220.10", Place: lasVegas,
			ASN: 22773, ASOrg: "ASN-CXA-ALL-CCI-22773-RDC", LAN: "10.100.4", SSID: "Hotel-Guest", APs: 1},
		{Name: "hotel Wi-Fi Orlando", Class: "residential", CIDR: "127.30.221.0/24", Egress: "127.30.221.10", Place: orlando,
			ASN: 20115, ASOrg: "CHARTER-20115", LAN: "10.100.8", SSID: "Resort-WiFi", APs: 1},
		{Name: "hotel Wi-Fi San Francisco", Class: "residential", CIDR: "127.30.222.0/24", Egress: "127.30.222.10", Place: sanFrancisco,
			ASN: 7018, ASOrg: "ATT-INTERNET4", LAN: "10.100.12", SSID: "Guest-Network", APs: 1},
	}
)

// Ranges of offices.yaml: the organisation's declared networks, and the
// simulated ISPs' /16s (the embedded catalog calls all of 127/8 private).
var (
	offices     = []site{siteHQ, siteAustin}
	coworkings  = []site{siteCowork}
	classRanges = []struct{ CIDR, Name, Class string }{
		{"127.30.0.0/16", "simulated residential broadband", "residential"},
		{"127.40.0.0/16", "simulated mobile carrier (CGNAT)", "mobile"},
		{"127.50.0.0/16", "simulated commercial VPN exits", "vpn"},
	}
)

// Scenario names.
const (
	scHQ        = "office-hq"
	scAustin    = "office-austin"
	scCowork    = "coworking"
	scHousehold = "household"
	scRemote    = "remote"
	scMobile    = "traveller-mobile"
	scHotel     = "traveller-hotel"
	scVPN       = "vpn"
	scFarm      = "farm"
)

// group is a population of devices with one story.
type group struct {
	Scenario string
	Devices  int
	// Scales: --devices scales this population; the others are fixed.
	Scales bool
	// Sites the devices egress from, in turn; none: each device is at its
	// own home in its declared city.
	Sites []site
	// Declared are the cities people are declared in (people.csv), in turn.
	Declared []place
	// Hostname style: "corp" (site prefix + serial or user), "byod" (mixed
	// styles of other employers' machines).
	Prefix string
	Story  string
}

// scenario is the default fleet (~300 devices).
var scenario = []group{
	{Scenario: scHQ, Devices: 120, Scales: true, Sites: []site{siteHQ}, Declared: []place{newYork}, Prefix: "NYC",
		Story: "office behind one NAT address, shared gateway and BSSIDs; declared in New York"},
	{Scenario: scAustin, Devices: 60, Scales: true, Sites: []site{siteAustin}, Declared: []place{austin}, Prefix: "AUS",
		Story: "second office, same pattern; declared in Austin"},
	{Scenario: scCowork, Devices: 30, Sites: []site{siteCowork}, Declared: []place{denver}, Prefix: "",
		Story: "coworking space: 30 people, mixed hostname styles, one address (class coworking)"},
	{Scenario: scHousehold, Devices: 2, Sites: []site{siteHousehold}, Declared: []place{chicago}, Prefix: "RMT",
		Story: "two genuine employees living together: one home address, router and Wi-Fi"},
	{Scenario: scRemote, Devices: 60, Scales: true, Declared: homeCities, Prefix: "RMT",
		Story: "remote workers, each at their own home, declared where the GeoIP says"},
	{Scenario: scMobile, Devices: 8, Sites: []site{siteMobile}, Declared: []place{boston, seattle, dallas, denver, atlanta, portland, nashville, chicago}, Prefix: "RMT",
		Story: "travellers tethered to one mobile carrier CGNAT address"},
	{Scenario: scHotel, Devices: 7, Sites: hotels, Declared: []place{denver, boston, miami, chicago, seattle, atlanta, philadelphia}, Prefix: "RMT",
		Story: "travellers on hotel Wi-Fi in other cities than declared"},
	{Scenario: scVPN, Devices: 4, Sites: []site{siteVPN}, Declared: []place{pittsburgh, sanDiego, minneapolis, raleigh}, Prefix: "RMT",
		Story: "unrelated people on the same commercial VPN exit, NordVPN running"},
	{Scenario: scFarm, Devices: 8, Sites: []site{siteFarm}, Declared: []place{boston, atlanta, miami, seattle, minneapolis, philadelphia, raleigh, detroit}, Prefix: "RMT",
		Story: "THE FARM: 8 people's laptops in one house, remote-desktop sessions, 3 PiKVMs, active at Asian daytime"},
}

// farmKVMs is how many farm laptops have a PiKVM attached.
const farmKVMs = 3
