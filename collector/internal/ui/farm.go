package ui

import (
	"cmp"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/cases"
	"github.com/bonafide-sec/bonafide/collector/internal/fleet"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
)

const (
	// farmPageSize is how many farms the list shows (highest score first).
	farmPageSize = 100
	// farmMemberRows bounds the farm view's member table; farmTimelineRows
	// its timeline (the latest events).
	farmMemberRows   = 500
	farmTimelineRows = 200
	// graphMaxDevices and graphMaxKeys bound the farm graph's nodes.
	graphMaxDevices = 60
	graphMaxKeys    = 60
)

// farmsPage is the farm list's data.
type farmsPage struct {
	Farms     []farmRow
	Suspected bool
	Full      bool // the list stopped at farmPageSize
	Limit     int
}

type farmRow struct {
	store.Cluster
	URL string
}

// farms lists the active clusters of linked devices, highest farm score
// first (?suspected=1: only those a fleet rule flagged).
func (s *Server) farms(w http.ResponseWriter, r *http.Request, _ accounts.Session) error {
	p := farmsPage{Limit: farmPageSize}
	switch v := r.URL.Query().Get("suspected"); v {
	case "", "0", "false":
	case "1", "true":
		p.Suspected = true
	default:
		return fmt.Errorf("suspected %q: %w", v, store.ErrInvalid)
	}
	list, err := s.store.ListClusters(r.Context(), p.Suspected, farmPageSize)
	if err != nil {
		return err
	}
	for _, c := range list {
		p.Farms = append(p.Farms, farmRow{Cluster: c, URL: "/ui/farms/" + url.PathEscape(c.ID)})
	}
	p.Full = len(list) == farmPageSize
	return s.render(w, r, http.StatusOK, "farms", "Farms", p)
}

// farmPage is the farm view's data.
type farmPage struct {
	Farm          store.Cluster
	Members       []farmMember
	HiddenMembers int
	People        []textLink
	Evidence      []farmEvidence
	Timeline      []farmEvent
	HiddenEvents  int
	Graph         farmGraph
	Where         template.HTML // the members' egress against their declared cities (cases.WhereSVG)
}

// textLink is a text with the URL it leads to.
type textLink struct {
	Text string
	URL  string
}

type farmMember struct {
	store.ClusterMember
	DeviceURL string
	PersonURL string // "" when the device is bound to no one
	AlertsURL string
}

type farmEvidence struct {
	Kind    string // human name of the kind
	Value   string
	Link    bool
	Devices []textLink
}

type farmEvent struct {
	At      time.Time
	Kind    string
	Devices []textLink // the founders (formed) or the device that joined or left
	// Other is the cluster the device came from (OtherDir "from") or went
	// to ("to"); empty for none.
	Other    textLink
	OtherDir string
}

func uiDeviceHref(id string) string    { return "/ui/devices/" + url.PathEscape(id) }
func uiPersonHref(email string) string { return "/ui/people/" + url.PathEscape(email) }

// sharedKeyKinds names the kinds of shared key (fleet.Kind*).
var sharedKeyKinds = map[string]string{
	fleet.KindEgress:     "egress IP",
	fleet.KindGatewayMAC: "gateway MAC",
	fleet.KindBSSID:      "Wi-Fi BSSID",
	fleet.KindLAN:        "LAN",
	fleet.KindPeripheral: "peripheral serial",
	fleet.KindRemoteTool: "remote-access tool id",
	fleet.KindSignin:     "sign-in address",
}

func sharedKeyKind(kind string) string { return cmp.Or(sharedKeyKinds[kind], kind) }

// farm is the farm view: members, people, the shared keys, co-signals,
// score, timeline and a graph of devices and the keys they share.
func (s *Server) farm(w http.ResponseWriter, r *http.Request, _ accounts.Session) error {
	c, err := s.store.GetCluster(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	p := farmPage{Farm: c, Graph: layoutGraph(c.Members, c.Evidence)}
	p.Graph.FarmID = c.ID
	places, err := cases.FarmPlaces(r.Context(), s.store, c.Members)
	if err != nil {
		return err
	}
	if p.Where, err = cases.WhereSVG(places); err != nil {
		return err
	}
	hosts := map[string]textLink{}
	for _, m := range c.Members {
		hosts[m.DeviceID] = textLink{Text: cmp.Or(m.Hostname, m.DeviceID), URL: uiDeviceHref(m.DeviceID)}
	}
	device := func(id string) textLink {
		if l, ok := hosts[id]; ok {
			return l
		}
		return textLink{Text: id, URL: uiDeviceHref(id)} // no longer a member
	}
	for i, m := range c.Members {
		if i == farmMemberRows {
			p.HiddenMembers = len(c.Members) - i
			break
		}
		fm := farmMember{ClusterMember: m, DeviceURL: uiDeviceHref(m.DeviceID)}
		if m.Person != "" {
			fm.PersonURL = uiPersonHref(m.Person)
		}
		if m.Hostname != "" {
			fm.AlertsURL = "/ui/alerts?" + url.Values{"host": {m.Hostname}}.Encode()
		}
		p.Members = append(p.Members, fm)
	}
	for _, e := range c.Emails {
		p.People = append(p.People, textLink{Text: e, URL: uiPersonHref(e)})
	}
	for _, k := range c.Evidence {
		ev := farmEvidence{Kind: sharedKeyKind(k.Kind), Value: k.Value, Link: k.Link}
		for _, id := range k.Devices {
			ev.Devices = append(ev.Devices, device(id))
		}
		p.Evidence = append(p.Evidence, ev)
	}
	events := c.Timeline
	if n := len(events) - farmTimelineRows; n > 0 {
		p.HiddenEvents, events = n, events[n:]
	}
	for _, e := range events {
		fe := farmEvent{At: e.At, Kind: e.Kind}
		if ids, ok := e.Detail["devices"].([]any); ok {
			for _, id := range ids {
				if id, ok := id.(string); ok {
					fe.Devices = append(fe.Devices, device(id))
				}
			}
		}
		if id, ok := e.Detail["device_id"].(string); ok {
			fe.Devices = append(fe.Devices, device(id))
		}
		for _, dir := range []string{"from", "to"} {
			if o, ok := e.Detail[dir].(string); ok && o != "" {
				fe.Other, fe.OtherDir = textLink{Text: o, URL: "/ui/farms/" + url.PathEscape(o)}, dir
			}
		}
		p.Timeline = append(p.Timeline, fe)
	}
	return s.render(w, r, http.StatusOK, "farm", "Farm "+c.ID, p)
}

// farmGraph is a farm drawn as a bipartite graph: devices in the left
// column, the keys they share in the right one, a line from each device
// to each key it holds. Coordinates are SVG user units.
type farmGraph struct {
	FarmID        string
	Width, Height int
	Devices       []graphNode
	Keys          []graphNode
	Edges         []graphEdge
	// AllDevices and AllKeys count the nodes before the caps (the keys
	// held by a shown device); the graph shows len(Devices) and len(Keys)
	// of them.
	AllDevices, AllKeys int
}

// Capped says whether the graph leaves nodes out.
func (g farmGraph) Capped() bool { return len(g.Devices) < g.AllDevices || len(g.Keys) < g.AllKeys }

type graphNode struct {
	X, Y  int
	Label string // shortened to fit
	Title string // in full, for the tooltip
	Class string
	URL   string // devices only
}

type graphEdge struct {
	X1, Y1, X2, Y2 int
	Link           bool // the key links the devices (else evidence only)
	Title          string
}

// Graph geometry.
const (
	graphRow      = 28  // vertical distance between nodes
	graphMargin   = 24  // above the first and below the last row
	graphDeviceX  = 260 // the device column
	graphKeyX     = 620 // the key column
	graphWidth    = 960
	graphLabelMax = 34 // runes of a label
)

// layoutGraph lays a farm out deterministically: the first graphMaxDevices
// members (in the store's order: by host name) top to bottom, and the
// shared keys held by a shown device, at most graphMaxKeys, each placed
// at the mean row of its devices (ties by kind and value) so that lines
// cross little. It is a pure function of its arguments.
func layoutGraph(members []store.ClusterMember, evidence []store.SharedKey) farmGraph {
	g := farmGraph{Width: graphWidth, AllDevices: len(members)}
	shown := members[:min(len(members), graphMaxDevices)]
	row := make(map[string]int, len(shown))
	for i, m := range shown {
		row[m.DeviceID] = i
	}
	type placed struct {
		key  store.SharedKey
		rows []int
		mean float64
	}
	var keys []placed
	for _, k := range evidence {
		p := placed{key: k}
		sum := 0
		for _, d := range k.Devices {
			if i, ok := row[d]; ok {
				p.rows = append(p.rows, i)
				sum += i
			}
		}
		if len(p.rows) == 0 {
			continue
		}
		p.mean = float64(sum) / float64(len(p.rows))
		keys = append(keys, p)
	}
	slices.SortStableFunc(keys, func(a, b placed) int {
		return cmp.Or(cmp.Compare(a.mean, b.mean), cmp.Compare(a.key.Kind, b.key.Kind), cmp.Compare(a.key.Value, b.key.Value))
	})
	g.AllKeys = len(keys)
	keys = keys[:min(len(keys), graphMaxKeys)]

	rows := max(len(shown), len(keys), 1)
	g.Height = 2*graphMargin + (rows-1)*graphRow
	// The shorter column is centred on the taller one.
	top := func(n int) int { return graphMargin + (rows-n)*graphRow/2 }
	dy := func(i int) int { return top(len(shown)) + i*graphRow }
	for i, m := range shown {
		host := cmp.Or(m.Hostname, m.DeviceID)
		title := host
		if m.Person != "" {
			title += " (" + m.Person + ")"
		}
		g.Devices = append(g.Devices, graphNode{X: graphDeviceX, Y: dy(i), Label: graphLabel(host), Title: title,
			Class: "device", URL: uiDeviceHref(m.DeviceID)})
	}
	for j, k := range keys {
		y := top(len(keys)) + j*graphRow
		name := sharedKeyKind(k.key.Kind)
		g.Keys = append(g.Keys, graphNode{X: graphKeyX, Y: y, Label: graphLabel(name + " " + k.key.Value),
			Title: fmt.Sprintf("%s %s, shared by %d devices", name, k.key.Value, len(k.key.Devices)), Class: "key-" + k.key.Kind})
		for _, i := range k.rows {
			g.Edges = append(g.Edges, graphEdge{X1: graphDeviceX, Y1: dy(i), X2: graphKeyX, Y2: y, Link: k.key.Link,
				Title: cmp.Or(shown[i].Hostname, shown[i].DeviceID) + " — " + name + " " + k.key.Value})
		}
	}
	return g
}

// graphLabel cuts a label to graphLabelMax runes with an ellipsis.
func graphLabel(s string) string {
	r := []rune(s)
	if len(r) <= graphLabelMax {
		return s
	}
	return string(r[:graphLabelMax-1]) + "…"
}
