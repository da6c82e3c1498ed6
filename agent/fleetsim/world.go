package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// Person is one row of the HR export.
type Person struct {
	Email, Name, Username string
	Declared              place
	WorkHours             string // "09:00-17:00" in Declared.TZ
	Start, End            int    // work hours as whole hours
}

// Hardware is what identifies a laptop.
type Hardware struct {
	Vendor, Model, Serial, UUID, MachineID string
	OS                                     string // windows, darwin, linux
	MAC                                    string // the Wi-Fi adapter's
}

// Device is one simulated laptop.
type Device struct {
	Index    int
	Scenario string
	Hostname string
	Person   Person
	HW       Hardware
	Site     site
	Egress   string // source address it dials from
	// Network position behind the site's router.
	LANAddress string
	GatewayMAC string
	BSSID      string
	// OSTimeZone is the zone the OS is set to (the declared one but for
	// some farm laptops).
	OSTimeZone string
	// Farm laptops: a remote-desktop tool in session, optionally a PiKVM.
	Farm bool
	Tool string // catalog id of the remote-desktop tool
	// ToolClientID is the tool's own id (AnyDesk ID, TeamViewer ID); the
	// first two AnyDesk laptops share one, as when a farm clones one
	// configured disk image.
	ToolClientID string
	KVM          bool
	KoreanIME    bool
	// Monitor is an external display's serial (0: none).
	Monitor uint32
}

// World is the whole simulated fleet.
type World struct {
	Seed    uint64
	Devices []*Device
	// gateways holds each shared site's router MAC and BSSIDs.
	gateways map[string]siteRadio
}

type siteRadio struct {
	mac    string
	bssids []string
}

// counts is how many devices each group gets for a requested total: the
// scaling groups share what the fixed ones leave, in proportion to their
// defaults. total <= 0 means the default scenario.
func counts(total int) []int {
	out := make([]int, len(scenario))
	fixed, scaling := 0, 0
	for i, g := range scenario {
		out[i] = g.Devices
		if g.Scales {
			scaling += g.Devices
		} else {
			fixed += g.Devices
		}
	}
	if total <= 0 {
		return out
	}
	left := max(0, total-fixed)
	assigned, last := 0, -1
	for i, g := range scenario {
		if g.Scales {
			out[i] = int(math.Round(float64(g.Devices) * float64(left) / float64(scaling)))
			assigned += out[i]
			last = i
		}
	}
	if last >= 0 {
		out[last] = max(0, out[last]+left-assigned)
	}
	return out
}

var (
	firstNames = []string{"Ana", "Ben", "Carla", "David", "Emma", "Farid", "Grace", "Hector", "Irene", "James", "Keiko", "Liam",
		"Maria", "Noah", "Olivia", "Pavel", "Quinn", "Rosa", "Samuel", "Tara", "Umar", "Vera", "William", "Xavier", "Yara",
		"Zoe", "Aaron", "Bianca", "Chris", "Diana", "Ethan", "Fatima", "George", "Hannah", "Isaac", "Julia", "Kevin", "Laura",
		"Marcus", "Nina", "Oscar", "Priya", "Rachel", "Sofia", "Thomas", "Valerie", "Wes", "Yusuf"}
	lastNames = []string{"Adams", "Baker", "Chen", "Diaz", "Evans", "Foster", "Garcia", "Hughes", "Ito", "Johnson", "Kim",
		"Lopez", "Martin", "Nguyen", "Okafor", "Patel", "Quintero", "Reed", "Smith", "Turner", "Ueda", "Vargas", "Walker",
		"Xu", "Young", "Zimmerman", "Brooks", "Coleman", "Dunn", "Ellis", "Flores", "Grant", "Hayes", "Ingram", "Jensen",
		"Keller", "Larsen", "Morales", "Novak", "Owens", "Perry", "Ramos", "Shaw", "Torres", "Vaughn", "Wong"}
	workHours = []struct {
		s     string
		start int
	}{{"09:00-17:00", 9}, {"08:00-16:00", 8}, {"09:00-18:00", 9}, {"10:00-18:00", 10}}
)

// NewWorld builds the fleet for a seed and a device count (<= 0: default).
// It is deterministic: the same arguments give the same hostnames,
// serials, addresses and MACs.
func NewWorld(seed uint64, total int) *World {
	rng := rand.New(rand.NewPCG(seed, 0x626f6e6166696465)) // "bonafide"
	w := &World{Seed: seed, gateways: map[string]siteRadio{}}
	usedNames, usedUsers, usedSerials := map[string]bool{}, map[string]bool{}, map[string]bool{}
	homes := map[string]int{}   // remote workers per home city
	perSite := map[string]int{} // devices per site
	usedHosts := map[string]bool{}
	n := 0
	for gi, count := range counts(total) {
		g := scenario[gi]
		for i := range count {
			d := &Device{Index: n, Scenario: g.Scenario}
			n++
			// Person.
			var first, last string
			for {
				first, last = firstNames[rng.IntN(len(firstNames))], lastNames[rng.IntN(len(lastNames))]
				if !usedNames[first+" "+last] {
					break
				}
				if len(usedNames) >= len(firstNames)*len(lastNames)/2 {
					last = fmt.Sprintf("%s %d", last, n) // a very large fleet
					break
				}
			}
			usedNames[first+" "+last] = true
			user := strings.ToLower(first[:1] + strings.ReplaceAll(last, " ", ""))
			for k := 2; usedUsers[user]; k++ {
				user = strings.ToLower(first[:1]+strings.ReplaceAll(last, " ", "")) + fmt.Sprint(k)
			}
			usedUsers[user] = true
			wh := workHours[rng.IntN(len(workHours))]
			d.Person = Person{
				Email: user + "@northwind.example", Name: first + " " + last, Username: user,
				Declared: g.Declared[i%len(g.Declared)], WorkHours: wh.s, Start: wh.start, End: wh.start + 8,
			}
			if wh.s == "09:00-18:00" {
				d.Person.End = 18
			}
			// Hardware.
			d.HW = newHardware(rng, usedSerials)
			// Network.
			if len(g.Sites) > 0 {
				d.Site = g.Sites[i%len(g.Sites)]
			} else {
				d.Site = w.homeSite(d.Person.Declared, homes)
			}
			// A mobile carrier's or VPN's address is shared by strangers,
			// but each has their own router: a phone's hotspot, a home
			// router behind the VPN client.
			radioKey := d.Site.Name
			if d.Site.Class == "mobile" || d.Site.Class == "vpn" {
				radioKey = fmt.Sprintf("%s/%d", d.Site.Name, i)
			}
			radio, ok := w.gateways[radioKey]
			if !ok {
				radio = siteRadio{mac: mac(rng, routerOUIs)}
				for range d.Site.APs {
					radio.bssids = append(radio.bssids, mac(rng, apOUIs))
				}
				w.gateways[radioKey] = radio
			}
			d.Egress, d.GatewayMAC = d.Site.Egress, radio.mac
			d.BSSID = radio.bssids[rng.IntN(len(radio.bssids))]
			k := perSite[d.Site.Name]
			perSite[d.Site.Name]++
			d.LANAddress = fmt.Sprintf("%s.%d", d.Site.LAN, 20+k%200)
			if d.Site.Class == "office" { // a /22 of DHCP leases
				d.LANAddress = fmt.Sprintf("%s.%d.%d", strings.TrimSuffix(d.Site.LAN, ".0"), k/200, 20+k%200)
			}
			d.OSTimeZone = d.Person.Declared.TZ
			d.Hostname = hostname(rng, g, d)
			for k := 2; usedHosts[d.Hostname]; k++ {
				d.Hostname = fmt.Sprintf("%s-%d", hostname(rng, g, d), k)
			}
			usedHosts[d.Hostname] = true
			if g.Scenario == scHQ || g.Scenario == scAustin || rng.IntN(3) == 0 {
				d.Monitor = 0x01000000 + rng.Uint32N(0x00ffffff) // a desk monitor of its own
			}
			if g.Scenario == scFarm {
				d.Farm = true
				d.Tool = []string{"anydesk", "anydesk", "teamviewer", "anydesk", "rustdesk", "anydesk", "teamviewer", "anydesk"}[i%8]
				if d.Tool != "rustdesk" { // current RustDesk keeps its id encrypted
					d.ToolClientID = fmt.Sprint(300_000_000 + rng.IntN(600_000_000))
				}
				if i%8 == 1 {
					d.ToolClientID = w.Devices[len(w.Devices)-1].ToolClientID
				}
				d.KVM = i < farmKVMs
				d.Monitor = 0
				switch i % 4 { // careful operators keep the declared zone; not all of them
				case 1:
					d.OSTimeZone = siteFarm.Place.TZ
				case 3:
					if i == 7 {
						d.OSTimeZone, d.KoreanIME = "Asia/Shanghai", true
					}
				}
			}
			w.Devices = append(w.Devices, d)
		}
	}
	return w
}

// homeSite is a remote worker's own home: an address in the /22 of their
// city, their own router.
func (w *World) homeSite(p place, homes map[string]int) site {
	ci := 0
	for i, c := range homeCities {
		if c.City == p.City {
			ci = i
		}
	}
	k := homes[p.City]
	homes[p.City]++
	third := 10 + 4*ci
	return site{
		Name: fmt.Sprintf("home %s #%d", p.City, k+1), Class: "residential",
		CIDR:   fmt.Sprintf("127.30.%d.0/22", third),
		Egress: fmt.Sprintf("127.30.%d.%d", third+k/250, 1+k%250),
		Place:  p, ASN: residentialISPs[ci%len(residentialISPs)].asn, ASOrg: residentialISPs[ci%len(residentialISPs)].org,
		LAN: []string{"192.168.1", "192.168.0", "10.0.0", "192.168.86"}[k%4], SSID: fmt.Sprintf("Home-%d", 1000+k), APs: 1,
	}
}

var residentialISPs = []struct {
	asn uint32
	org string
}{{7922, "COMCAST-7922"}, {20115, "CHARTER-20115"}, {701, "UUNET"}, {7018, "ATT-INTERNET4"}, {22773, "ASN-CXA-ALL-CCI-22773-RDC"}}

// GeoIP records beyond the shared sites: one per home city.
func homeNetworks() []site {
	var out []site
	for ci, c := range homeCities {
		out = append(out, site{Name: "homes " + c.City, Class: "residential", CIDR: fmt.Sprintf("127.30.%d.0/22", 10+4*ci), Place: c,
			ASN: residentialISPs[ci%len(residentialISPs)].asn, ASOrg: residentialISPs[ci%len(residentialISPs)].org})
	}
	return out
}

// Organisationally unique identifiers for the MACs made up here.
var (
	intelOUIs  = []string{"a4:c3:f0", "8c:8d:28", "f4:26:79", "3c:22:fb"}
	appleOUIs  = []string{"a4:83:e7", "f0:18:98", "3c:a6:f6", "bc:d0:74"}
	routerOUIs = []string{"a0:40:a0", "50:c7:bf", "e4:f4:c6", "f8:bb:bf", "c8:d7:19"}
	apOUIs     = []string{"70:3a:0e", "d8:c7:c8", "b4:fb:e4", "ac:23:16"}
)

func mac(rng *rand.Rand, ouis []string) string {
	return fmt.Sprintf("%s:%02x:%02x:%02x", ouis[rng.IntN(len(ouis))], rng.IntN(256), rng.IntN(256), rng.IntN(256))
}

const serialChars = "0123456789BCDFGHJKLMNPQRSTVWXYZ"

func randString(rng *rand.Rand, alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

func randUUID(rng *rand.Rand) string {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newHardware makes a laptop: Dell, Lenovo or Apple, with a serial unique
// in the fleet.
func newHardware(rng *rand.Rand, used map[string]bool) Hardware {
	var h Hardware
	for {
		switch r := rng.IntN(10); {
		case r < 4:
			h = Hardware{Vendor: "Dell Inc.", Model: []string{"Latitude 7440", "Latitude 5540", "XPS 13 9340", "Precision 5680"}[rng.IntN(4)],
				Serial: randString(rng, serialChars, 7), OS: "windows", MAC: mac(rng, intelOUIs)}
			if rng.IntN(5) == 0 {
				h.OS = "linux"
			}
		case r < 7:
			h = Hardware{Vendor: "LENOVO", Model: []string{"21HD0012US", "21HM002GUS", "21AH00F5US"}[rng.IntN(3)],
				Serial: "PF" + randString(rng, serialChars, 6), OS: "windows", MAC: mac(rng, intelOUIs)}
			if rng.IntN(4) == 0 {
				h.OS = "linux"
			}
		default:
			h = Hardware{Vendor: "Apple Inc.", Model: []string{"Mac14,7", "Mac14,9", "Mac15,3", "Mac15,6"}[rng.IntN(4)],
				Serial: randString(rng, serialChars, 10), OS: "darwin", MAC: mac(rng, appleOUIs)}
		}
		if !used[h.Serial] {
			used[h.Serial] = true
			break
		}
	}
	h.UUID = randUUID(rng)
	switch h.OS {
	case "darwin":
		h.MachineID = h.UUID // IOPlatformUUID
	case "windows":
		h.MachineID = randUUID(rng) // MachineGuid
	default:
		h.MachineID = strings.ReplaceAll(randUUID(rng), "-", "")
	}
	return h
}

// hostname names a device the way its owner's IT would: corporate laptops
// by site and serial (Windows) or user (macOS, Linux); the coworking
// space's machines in the styles of many employers.
func hostname(rng *rand.Rand, g group, d *Device) string {
	if g.Prefix == "" {
		first := strings.SplitN(d.Person.Name, " ", 2)[0]
		switch rng.IntN(4) {
		case 0:
			return "DESKTOP-" + randString(rng, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", 7)
		case 1:
			return first + "s-MacBook-Pro-" + strings.ToUpper(d.HW.Serial[len(d.HW.Serial)-4:])
		case 2:
			return "LT-" + strings.ToUpper(d.Person.Username)
		default:
			return d.Person.Username + "-dev"
		}
	}
	switch d.HW.OS {
	case "windows":
		return g.Prefix + "-" + d.HW.Serial
	case "darwin":
		return strings.ToLower(g.Prefix) + "-mbp-" + d.Person.Username
	}
	return strings.ToLower(g.Prefix) + "-" + d.Person.Username
}

// Farm returns the farm's devices.
func (w *World) Farm() []*Device {
	var out []*Device
	for _, d := range w.Devices {
		if d.Farm {
			out = append(out, d)
		}
	}
	return out
}
