package ui

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/activity"
	"github.com/bonafide-sec/bonafide/collector/internal/snapdiff"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// The device list and the device page. Everything shown here that came
// from an agent (host names, user names, paths, USB and EDID strings) is a
// plain string that html/template escapes; nothing is marked safe.

const (
	// timelineSnapshots is how many stored snapshots one page of a
	// device's timeline diffs (each against the one before it).
	timelineSnapshots = 50
	// egressRows is how many egress changes the device page shows.
	egressRows = 50
	// deviceAlerts is how many of its alerts the device page shows.
	deviceAlerts = 20
	// riskPoints is how many risk history entries a page shows.
	riskPoints = 10
	// The page is bounded whatever an agent sends (a hostile one sends
	// snapshots of thousands of entries): the facts and each snapshot
	// diffed show at most snapdiff.MaxListRows entries of any list, and
	// each snapshot at most snapdiff.MaxChanges changes.
	pageListsTrimmed = "entries of this snapshot not shown (the device page shows at most %d of any list; GET /api/v1/devices/{id} has the snapshot in full)"
)

var (
	deviceFields = [][2]string{{"", "host, serial or person"}, {"host", "host name"}, {"serial", "serial number"}, {"person", "person (email)"}}
	deviceSorts  = [][2]string{{"risk", "highest risk first"}, {"last_seen", "last seen first"}}
)

// deviceList is the device list page's data.
type deviceList struct {
	Filter  url.Values // q, field, sort
	Fields  [][2]string
	Sorts   [][2]string
	Devices []deviceRow
	Next    url.Values // the next page's query; nil on the last page
}

type deviceRow struct {
	store.Device
	PersonURL string
}

// devices lists devices: searched by a prefix of host name, serial or
// person, sorted by risk or last report, 50 a page.
func (s *Server) devices(w http.ResponseWriter, r *http.Request, _ accounts.Session) error {
	q := r.URL.Query()
	dq := store.DeviceQuery{Search: strings.TrimSpace(q.Get("q")), Field: q.Get("field"), Sort: cmp.Or(q.Get("sort"), "risk"),
		Cursor: q.Get("cursor"), Limit: pageSize}
	page, err := s.store.SearchDevices(r.Context(), dq)
	if err != nil {
		return err
	}
	data := deviceList{Filter: url.Values{"q": {dq.Search}, "field": {dq.Field}, "sort": {dq.Sort}}, Fields: deviceFields, Sorts: deviceSorts}
	for _, d := range page.Devices {
		data.Devices = append(data.Devices, deviceRow{Device: d, PersonURL: personURL(d.Person)})
	}
	if page.Next != "" {
		data.Next = url.Values{"q": {dq.Search}, "field": {dq.Field}, "sort": {dq.Sort}, "cursor": {page.Next}}
	}
	return s.render(w, r, http.StatusOK, "devices", "Devices", data)
}

// personURL is the person page of an email ("" for none).
func personURL(email string) string {
	if email == "" {
		return ""
	}
	return "/ui/people/" + url.PathEscape(email)
}

// devicePage is the device page's data.
type devicePage struct {
	Device      store.Device
	Binding     string // how the person is bound, in words
	PersonURL   string
	PersonName  string
	Agents      []store.AgentInfo
	RiskHistory []store.RiskPoint
	Alerts      []store.Alert
	Facts       *snapshotView // nil before the first snapshot
	Timeline    []timelineEvent
	// OlderTimeline continues the timeline ("" when it is complete).
	OlderTimeline string
	Egress        []egressRow
	Activity      *heatmap
}

// bindingText says in words how a device is bound to its person.
var bindingText = map[string]string{
	"device_serial": "the HR export names this device's serial number",
	"username":      "the person's user name is used on this device",
}

func (s *Server) device(w http.ResponseWriter, r *http.Request, _ accounts.Session) error {
	ctx := r.Context()
	d, err := s.store.GetDevice(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	before := int64(0)
	if b := r.URL.Query().Get("before"); b != "" {
		if before, err = strconv.ParseInt(b, 10, 64); err != nil || before <= 0 {
			return fmt.Errorf("before %q: %w", b, store.ErrInvalid)
		}
	}
	p := devicePage{Device: d, Binding: bindingText[d.PersonBinding], PersonURL: personURL(d.Person)}
	zone, zoneName := time.UTC, ""
	if d.Person != "" {
		person, err := s.store.GetPerson(ctx, d.Person)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		p.PersonName = person.Name
		if loc, err := time.LoadLocation(person.Timezone); err == nil && person.Timezone != "" {
			zone, zoneName = loc, person.Timezone
		}
	}
	if p.Agents, err = s.store.DeviceAgents(ctx, d.ID); err != nil {
		return err
	}
	if p.RiskHistory, err = s.store.RiskHistory(ctx, "device", d.ID); err != nil {
		return err
	}
	p.RiskHistory = p.RiskHistory[:min(len(p.RiskHistory), riskPoints)]
	if p.Alerts, err = s.store.ListAlerts(ctx, store.AlertFilter{DeviceID: d.ID, Limit: deviceAlerts}); err != nil {
		return err
	}
	if sn, err := s.store.LatestSnapshot(ctx, d.ID); err == nil {
		hs, dropped, err := snapdiff.Decode(sn.Data)
		if err != nil {
			return fmt.Errorf("device %s snapshot: %w", d.ID, err)
		}
		p.Facts = snapshotFacts(hs)
		p.Facts.At = sn.ReceivedAt
		if dropped > 0 {
			p.Facts.Problems = append(p.Facts.Problems, fmt.Sprintf("%d "+pageListsTrimmed, dropped, snapdiff.MaxListRows))
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	// One more than shown: whether the oldest shown is the first.
	egress, err := s.store.EgressHistory(ctx, d.ID, time.Time{}, egressRows+1)
	if err != nil {
		return err
	}
	for i, e := range egress[:min(len(egress), egressRows)] {
		p.Egress = append(p.Egress, egressRow{EgressChange: e, Where: egressWhere(e), Network: egressNetwork(e), First: i == len(egress)-1})
	}
	if err := s.timeline(r, &p, before, egress); err != nil {
		return err
	}
	h, err := s.store.DeviceActivity(ctx, d.ID)
	if err != nil {
		return err
	}
	p.Activity = newHeatmap(h, zone, zoneName)
	switch {
	case d.Person == "":
		p.Activity.Note = "The device is bound to no person, so no declared time zone applies."
	case zoneName == "":
		p.Activity.Note = "The person declared no time zone."
	}
	return s.render(w, r, http.StatusOK, "device", cmp.Or(d.Hostname, d.ID), p)
}

// timeline fills the device's changes: each stored snapshot diffed
// against the one before it, a page of timelineSnapshots at a time (older
// pages by ?before=, the id of the newer page's oldest snapshot), with the
// egress changes of the same period. egress is the device's newest egress
// changes (egressRows+1 of them when there are more).
func (s *Server) timeline(r *http.Request, p *devicePage, before int64, egress []store.EgressChange) error {
	ctx := r.Context()
	var until time.Time // the end of the page's period; zero on the first page
	if before > 0 {
		newer, err := s.store.DeviceSnapshots(ctx, p.Device.ID, before+1, 1)
		if err != nil {
			return err
		}
		if len(newer) == 0 || newer[0].ID != before {
			return fmt.Errorf("before %d: no such snapshot of the device: %w", before, store.ErrInvalid)
		}
		until = newer[0].ReceivedAt
		if egress, err = s.store.EgressHistory(ctx, p.Device.ID, until, egressRows+1); err != nil {
			return err
		}
	}
	// One more than shown: the predecessor of the oldest shown.
	hist, err := s.store.DeviceSnapshots(ctx, p.Device.ID, before, timelineSnapshots+1)
	if err != nil {
		return err
	}
	snaps := make([]*agentv1.HostSnapshot, len(hist))
	for i, h := range hist {
		if snaps[i], _, err = snapdiff.Decode(h.Data); err != nil {
			return fmt.Errorf("device %s snapshot %d: %w", p.Device.ID, h.ID, err)
		}
	}
	shown := min(len(hist), timelineSnapshots)
	for i, cs := range snapdiff.Changes(snaps, shown) {
		for _, c := range events(cs) {
			c.At = hist[i].ReceivedAt
			p.Timeline = append(p.Timeline, c)
		}
	}
	// The page covers the time from its oldest snapshot on (from the
	// start when that is the first snapshot).
	var since time.Time
	if len(hist) > timelineSnapshots {
		since = hist[shown-1].ReceivedAt
		p.OlderTimeline = fmt.Sprintf("/ui/devices/%s?before=%d#timeline", url.PathEscape(p.Device.ID), hist[shown-1].ID)
	}
	for i, e := range egress[:min(len(egress), egressRows)] {
		if e.At.Before(since) {
			break
		}
		c := timelineEvent{At: e.At, Change: snapdiff.Change{Family: "network"}}
		if i+1 < len(egress) {
			c.Text = fmt.Sprintf("egress network changed: %s → %s (%s; %s)", egress[i+1].IP, e.IP, egressNetwork(e), egressWhere(e))
		} else {
			c.Text = fmt.Sprintf("first report from %s (%s; %s)", e.IP, egressNetwork(e), egressWhere(e))
		}
		p.Timeline = append(p.Timeline, c)
	}
	// Newest first; within one snapshot, the diff's order.
	slices.SortStableFunc(p.Timeline, func(a, b timelineEvent) int { return b.At.Compare(a.At) })
	return nil
}

// egressRow is one row of the network history.
type egressRow struct {
	store.EgressChange
	Where   string
	Network string
	First   bool // the first address the device reported from
}

// where says where an egress address is, or why that is unknown.
func egressWhere(e store.EgressChange) string {
	var parts []string
	for _, p := range []string{e.City, e.Region, e.Country} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) > 0 {
		return strings.Join(parts, ", ")
	}
	return joinNonEmpty(" ", "location unknown", parens(e.Status))
}

// network names an egress address's network: its class, catalog entry and
// autonomous system.
func egressNetwork(e store.EgressChange) string {
	s := cmp.Or(e.NetworkClass, "unknown") + " network"
	if e.NetworkName != "" {
		s += " " + e.NetworkName
	}
	if e.ASN != 0 {
		s += fmt.Sprintf(", AS%d", e.ASN)
		if e.Org != "" {
			s += " " + e.Org
		}
	}
	return s
}

// snapshotView is the latest snapshot in human terms, by signal family.
type snapshotView struct {
	At          time.Time
	OS          string
	BootTime    time.Time
	Problems    []string // signal families not collected, and why
	Tools       []toolRow
	OSRemote    []string
	USB         []usbRow
	Peripherals []string
	Displays    []displayRow
	Lid         string
	Interfaces  []ifaceRow
	Route       string
	Wifi        string
	DNS         string
	Proxy       string
	TimeZone    string
	Locale      string
	Layouts     []string
	Sessions    []sessionRow
	// Media is nil when the snapshot has no media section (an older
	// agent); Posture likewise.
	Media   *mediaView
	Posture *postureView
}

// mediaView is the capture devices the agent listed, each with the
// media-catalog tool it matched.
type mediaView struct {
	Devices  []mediaRow
	Findings []string
}

type mediaRow struct {
	Kind, Name, Source, Location, Match string
}

// postureView is the local accounts set-up.
type postureView struct {
	Admins   string // the local administrators, or why they are not known
	Accounts []string
	Installs []installRow
}

type installRow struct {
	Tool, Package, User, Source string
	At                          time.Time
}

type toolRow struct {
	Name, Category, State, ClientID string
	Processes                       []string
	Installs                        []string
	Services                        []string
	Sockets                         []string
}

type usbRow struct {
	ID, Manufacturer, Product, Serial, Kind, Location string
}

type displayRow struct {
	Connector, Maker, Model, Serial, Size, Made, State string
}

type ifaceRow struct {
	Name, Kind, MAC, Addresses, State, VPN string
}

type sessionRow struct {
	User, Type, From, Terminal string
	Since                      time.Time
}

// snapshotFacts describes a snapshot.
func snapshotFacts(sn *agentv1.HostSnapshot) *snapshotView {
	f := &snapshotView{OS: snapdiff.OSName(sn)}
	if bt := sn.GetIdentity().GetBootTime(); bt != nil {
		f.BootTime = bt.AsTime()
	}
	for _, st := range sn.GetSignals() {
		if st.GetState() != agentv1.SignalStatus_STATE_OK {
			f.Problems = append(f.Problems, joinNonEmpty(": ", st.GetName()+" "+snapdiff.SignalState(st.GetState()), st.GetMessage()))
		}
	}
	ra := sn.GetRemoteAccess()
	for _, t := range ra.GetTools() {
		row := toolRow{Name: cmp.Or(t.GetName(), t.GetToolId()), Category: strings.ReplaceAll(t.GetCategory(), "_", " "),
			State: snapdiff.ToolState(t), ClientID: t.GetClientId()}
		for _, p := range t.GetProcesses() {
			pid := ""
			if p.GetPid() > 0 {
				pid = "(pid " + strconv.Itoa(int(p.GetPid())) + ")"
			}
			row.Processes = append(row.Processes, joinNonEmpty(" ", p.GetName(), p.GetPath(), pid, parens(p.GetUser())))
		}
		for _, i := range t.GetInstalls() {
			row.Installs = append(row.Installs, joinNonEmpty(" ", joinNonEmpty(": ", i.GetKind(), i.GetLocation()), parens(i.GetVersion())))
		}
		for _, sv := range t.GetServices() {
			row.Services = append(row.Services, joinNonEmpty(" ", joinNonEmpty(": ", sv.GetKind(), sv.GetName()), parens(joinNonEmpty(", ", sv.GetState(), sv.GetStartMode()))))
		}
		for _, so := range t.GetListening() {
			row.Sockets = append(row.Sockets, fmt.Sprintf("listening %s %s:%d", so.GetProtocol(), so.GetLocalAddress(), so.GetLocalPort()))
		}
		for _, so := range t.GetConnections() {
			row.Sockets = append(row.Sockets, fmt.Sprintf("connected %s to %s:%d", so.GetProtocol(), so.GetRemoteAddress(), so.GetRemotePort()))
		}
		f.Tools = append(f.Tools, row)
	}
	for _, o := range ra.GetOsFeatures() {
		f.OSRemote = append(f.OSRemote, osFeatureLabel(o))
	}
	for _, u := range sn.GetUsb().GetDevices() {
		f.USB = append(f.USB, usbRow{ID: snapdiff.USBID(u), Manufacturer: u.GetManufacturer(), Product: u.GetProduct(), Serial: u.GetSerial(),
			Kind: usbKind(u), Location: u.GetLocation()})
	}
	for _, p := range sn.GetPeripherals().GetFindings() {
		f.Peripherals = append(f.Peripherals, snapdiff.PeripheralLabel(p))
	}
	for _, d := range sn.GetDisplays().GetDisplays() {
		row := displayRow{Connector: d.GetConnector(), Maker: d.GetManufacturerId(), Model: snapdiff.DisplayModel(d), Serial: snapdiff.DisplaySerial(d)}
		if d.GetWidthMm() > 0 {
			row.Size = fmt.Sprintf("%d × %d mm", d.GetWidthMm(), d.GetHeightMm())
		}
		if d.GetManufactureYear() > 0 {
			row.Made = strconv.Itoa(int(d.GetManufactureYear()))
		}
		row.State = joinNonEmpty(", ", onlyIf(d.GetInternal(), "built-in"), onlyIf(d.GetActive(), "in use"), onlyIf(!d.GetEdidChecksumOk(), "EDID checksum wrong"))
		f.Displays = append(f.Displays, row)
	}
	f.Lid = snapdiff.LidState(sn.GetDisplays().GetLid())
	n := sn.GetNetwork()
	for _, i := range n.GetInterfaces() {
		f.Interfaces = append(f.Interfaces, ifaceRow{Name: i.GetName(), Kind: snapdiff.IfaceKind(i.GetKind()), MAC: i.GetMac(),
			Addresses: strings.Join(i.GetAddresses(), ", "), State: onlyIf(i.GetUp(), "up") + onlyIf(!i.GetUp(), "down"),
			VPN: joinNonEmpty(" ", i.GetVpnToolId(), parens(i.GetDescription()))})
	}
	if rt := n.GetDefaultRoute(); rt != nil {
		f.Route = joinNonEmpty(" ", "via "+cmp.Or(rt.GetGateway(), "no gateway"), "on "+rt.GetInterface(),
			parens(joinNonEmpty(", ", onlyIf(rt.GetGatewayMac() != "", "router MAC "+rt.GetGatewayMac()), gatewayMakerLabel(rt.GetGatewayMaker()))))
	}
	if wf := n.GetWifi(); wf != nil {
		switch {
		case !wf.GetAvailable():
			f.Wifi = "not readable: " + wf.GetReason()
		case wf.GetSsid() == "" && wf.GetBssid() == "":
			f.Wifi = "not connected"
		default:
			f.Wifi = joinNonEmpty(" ", wf.GetSsid(), parens(onlyIf(wf.GetBssid() != "", "access point "+wf.GetBssid())), "on "+wf.GetInterface())
		}
	}
	f.DNS = strings.Join(n.GetDnsServers(), ", ")
	f.Proxy = snapdiff.ProxyLabel(n.GetProxy())
	lo := sn.GetLocale()
	if lo != nil {
		f.TimeZone = joinNonEmpty(" ", cmp.Or(lo.GetTimezone(), "unknown"), parens(utcOffset(lo.GetUtcOffsetSeconds())))
		f.Locale = lo.GetSystemLocale()
	}
	for _, k := range lo.GetKeyboardLayouts() {
		f.Layouts = append(f.Layouts, snapdiff.LayoutLabel(k))
	}
	for _, l := range sn.GetSessions().GetCurrent() {
		row := sessionRow{User: l.GetUser(), Type: snapdiff.SessionType(l.GetType()), From: l.GetSourceAddress(), Terminal: l.GetTerminal()}
		if l.GetStartedAt() != nil {
			row.Since = l.GetStartedAt().AsTime()
		}
		f.Sessions = append(f.Sessions, row)
	}
	f.Media = mediaFacts(sn.GetMedia())
	f.Posture = postureFacts(sn.GetPosture())
	return f
}

// mediaFacts describes the media section (nil when there is none).
func mediaFacts(m *agentv1.Media) *mediaView {
	if m == nil {
		return nil
	}
	v := &mediaView{}
	match := map[[2]string]string{}
	for _, fi := range m.GetFindings() {
		match[[2]string{fi.GetDevice(), fi.GetSource()}] = snapdiff.MediaFindingTool(fi)
		v.Findings = append(v.Findings, snapdiff.MediaFindingLabel(fi))
	}
	for _, d := range m.GetDevices() {
		v.Devices = append(v.Devices, mediaRow{Kind: d.GetKind(), Name: d.GetName(), Source: strings.ReplaceAll(d.GetSource(), "_", " "),
			Location: d.GetLocation(), Match: match[[2]string{d.GetName(), d.GetSource()}]})
	}
	return v
}

// postureFacts describes the posture section (nil when there is none).
func postureFacts(p *agentv1.Posture) *postureView {
	if p == nil {
		return nil
	}
	v := &postureView{Accounts: p.GetInteractiveAccounts(), Admins: "not read on this operating system"}
	if p.GetAdminsRead() {
		v.Admins = cmp.Or(strings.Join(p.GetLocalAdmins(), ", "), "none")
	}
	for _, i := range p.GetToolInstalls() {
		row := installRow{Tool: i.GetToolId(), Package: i.GetPackage(), User: i.GetUser(), Source: i.GetSource()}
		if i.GetAt() != nil {
			row.At = i.GetAt().AsTime()
		}
		v.Installs = append(v.Installs, row)
	}
	return v
}

// gatewayMakerLabel names a routers-catalog match ("" for none).
func gatewayMakerLabel(m *agentv1.GatewayMaker) string {
	if m == nil {
		return ""
	}
	return joinNonEmpty(" ", cmp.Or(m.GetName(), m.GetId()), strings.ReplaceAll(m.GetCategory(), "_", " "))
}

func onlyIf(ok bool, s string) string {
	if ok {
		return s
	}
	return ""
}

func parens(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}

func joinNonEmpty(sep string, parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(p string) bool { return p == "" }), sep)
}

func utcOffset(sec int32) string {
	sign := "+"
	if sec < 0 {
		sign, sec = "−", -sec
	}
	return fmt.Sprintf("UTC%s%02d:%02d", sign, sec/3600, sec%3600/60)
}

func osFeatureLabel(o *agentv1.OsRemoteAccess) string {
	s := o.GetKind() + ": " + onlyIf(o.GetEnabled(), "enabled") + onlyIf(!o.GetEnabled(), "disabled")
	if o.GetListening() {
		s += fmt.Sprintf(", listening on port %d", o.GetPort())
	}
	return s
}

func usbKind(u *agentv1.UsbDevice) string {
	h := u.GetHid()
	var kinds []string
	for _, k := range []struct {
		on   bool
		name string
	}{{h.GetKeyboard(), "keyboard"}, {h.GetRelativeMouse(), "mouse"}, {h.GetAbsolutePointer(), "absolute pointer"},
		{h.GetConsumerControl(), "media keys"}, {h.GetDigitizer(), "digitizer"}, {u.GetMassStorage() != nil, "storage"},
		{u.GetNetworkFunction(), "network adapter"}} {
		if k.on {
			kinds = append(kinds, k.name)
		}
	}
	return strings.Join(kinds, ", ")
}

// timelineEvent is one event of a device's timeline: a change of its
// snapshots (snapdiff) or of its egress, at a time.
type timelineEvent struct {
	At time.Time
	snapdiff.Change
}

// diffSnapshots is snapdiff.Diff as timeline events (without their
// time): the words the device page's timeline shows (TestDiffSnapshots
// holds them to the page's expectations).
func diffSnapshots(prev, cur *agentv1.HostSnapshot) []timelineEvent {
	return events(snapdiff.Diff(prev, cur))
}

func events(cs []snapdiff.Change) []timelineEvent {
	out := make([]timelineEvent, len(cs))
	for i, c := range cs {
		out[i] = timelineEvent{Change: c}
	}
	return out
}

// heatmap is an activity histogram laid out by day of the week and hour
// of the day in a zone.
type heatmap struct {
	// Zone names the zone; Declared is false when it is UTC for want of
	// a declared one.
	Zone     string
	Declared bool
	Note     string // why the zone is UTC, when it is for want of one
	From, To time.Time
	Hours    []string
	Rows     []heatRow
	Empty    bool // no observed minute in the window
}

type heatRow struct {
	Day   string
	Cells []heatCell
}

type heatCell struct {
	Class string // heat-0 … heat-4, or heat-none when not observed
	Label string // day, hour and minutes, for the tooltip
	Short string // the minutes alone, for screen readers (the headers say the day and hour)
	Value int
}

var weekdayNames = []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}

// bucketActivity adds up a histogram's active and sampled minutes by day
// of the week (Monday first) and hour of the day in loc. Each UTC hour
// counts in the local hour its middle falls in, so daylight saving time
// is right (time.Location knows the transitions: a spring-forward night
// has no 02:00 hour, a fall-back night has two), and in zones offset by a
// half or three quarters of an hour the whole UTC hour goes to one local
// hour.
func bucketActivity(h *activity.Histogram, loc *time.Location) (active, sampled [7][24]int) {
	start := h.End - activity.Window
	for i := range activity.Window {
		if h.Sampled[i] == 0 {
			continue
		}
		t := time.Unix((start+int64(i))*3600+1800, 0).In(loc)
		d := (int(t.Weekday()) + 6) % 7
		active[d][t.Hour()] += int(h.Active[i])
		sampled[d][t.Hour()] += int(h.Sampled[i])
	}
	return active, sampled
}

// heatLevel is a cell's intensity, 0 (no activity) to 4, relative to the
// busiest cell.
func heatLevel(v, busiest int) int {
	if v <= 0 || busiest <= 0 {
		return 0
	}
	return (4*v + busiest - 1) / busiest // ceil(4v/busiest): any activity shows
}

// newHeatmap lays out a histogram (nil: none yet) in loc; zoneName is the
// declared zone ("" when there is none and loc is UTC).
func newHeatmap(h *activity.Histogram, loc *time.Location, zoneName string) *heatmap {
	m := &heatmap{Zone: cmp.Or(zoneName, "UTC"), Declared: zoneName != "", Empty: true}
	for hr := range 24 {
		m.Hours = append(m.Hours, fmt.Sprintf("%02d", hr))
	}
	var active, sampled [7][24]int
	if h != nil {
		active, sampled = bucketActivity(h, loc)
		m.From, m.To = time.Unix((h.End-activity.Window)*3600, 0).UTC(), time.Unix(h.End*3600, 0).UTC()
	}
	busiest := 0
	for d := range 7 {
		for hr := range 24 {
			busiest = max(busiest, active[d][hr])
			if sampled[d][hr] > 0 {
				m.Empty = false
			}
		}
	}
	for d, day := range weekdayNames {
		row := heatRow{Day: day}
		for hr := range 24 {
			c := heatCell{Value: active[d][hr], Class: "heat-" + strconv.Itoa(heatLevel(active[d][hr], busiest))}
			c.Short = fmt.Sprintf("%d active minutes of %d observed", active[d][hr], sampled[d][hr])
			if sampled[d][hr] == 0 {
				c.Class, c.Short = "heat-none", "not observed"
			}
			c.Label = fmt.Sprintf("%s %02d:00–%02d:00: %s", day, hr, (hr+1)%24, c.Short)
			row.Cells = append(row.Cells, c)
		}
		m.Rows = append(m.Rows, row)
	}
	return m
}
