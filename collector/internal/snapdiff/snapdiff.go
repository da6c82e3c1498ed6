// Package snapdiff says, in plain words and item by item, what changed
// between two snapshots of a device: which remote tool appeared or went,
// which USB device or display was attached, which VPN came up, how the
// time zone, input languages and sessions changed. The device page and
// the case timeline (and its evidence package) both show these changes;
// they are computed here once. It judges nothing (the rules do) and
// renders nothing (the edges escape every string: all of them come from
// an agent).
//
// A stored snapshot is outside bytes: Decode bounds it, and Changes caps
// what one snapshot can add to a timeline.
package snapdiff

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Bounds of what one snapshot contributes, whatever an agent sent (a
// hostile one sends snapshots of thousands of entries).
const (
	// MaxListRows is how many entries of any list of a decoded snapshot
	// are kept.
	MaxListRows = 100
	// MaxChanges is how many changes of one snapshot are listed; a last
	// one says how many more there were.
	MaxChanges = 100
)

// Change is one change between two snapshots: its signal family
// ("remote access", "USB", "displays", "network", "locale", "sessions"
// …) and what changed, in words.
type Change struct {
	Family string
	Text   string
}

// Decode reads a stored snapshot (protobuf-encoded agentv1.HostSnapshot)
// and cuts every list in it, at any depth, to MaxListRows entries; it
// returns how many entries it dropped.
func Decode(data []byte) (*agentv1.HostSnapshot, int, error) {
	var sn agentv1.HostSnapshot
	if err := proto.Unmarshal(data, &sn); err != nil {
		return nil, 0, err
	}
	return &sn, trimLists(sn.ProtoReflect(), MaxListRows), nil
}

// trimLists cuts every repeated field of m, at any depth, to max entries
// and returns how many entries it dropped.
func trimLists(m protoreflect.Message, max int) int {
	dropped := 0
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			l := v.List()
			if l.Len() > max {
				dropped += l.Len() - max
				l.Truncate(max)
			}
			if fd.Message() != nil {
				for i := range l.Len() {
					dropped += trimLists(l.Get(i).Message(), max)
				}
			}
		case fd.IsMap():
		case fd.Message() != nil:
			dropped += trimLists(v.Message(), max)
		}
		return true
	})
	return dropped
}

// Changes says what each of the first shown snapshots of a history
// changed: snaps are consecutive snapshots of one device, newest first,
// each diffed against the next (its predecessor), at most MaxChanges
// changes each. A snapshot without a predecessor in snaps is taken for
// the device's first and described in a few counts, so pass one snapshot
// more than shown unless the history starts with the last one.
func Changes(snaps []*agentv1.HostSnapshot, shown int) [][]Change {
	out := make([][]Change, min(shown, len(snaps)))
	for i := range out {
		if i+1 < len(snaps) {
			out[i] = capChanges(Diff(snaps[i+1], snaps[i]), MaxChanges)
		} else {
			out[i] = []Change{{Family: "snapshot", Text: "first snapshot: " + Summary(snaps[i])}}
		}
	}
	return out
}

// capChanges keeps the first max changes of one snapshot's diff and says
// how many more there were.
func capChanges(cs []Change, max int) []Change {
	if len(cs) <= max {
		return cs
	}
	return append(cs[:max:max], Change{Family: "snapshot", Text: fmt.Sprintf("… and %d more changes in this snapshot", len(cs)-max)})
}

// Summary describes a first snapshot in a few counts.
func Summary(sn *agentv1.HostSnapshot) string {
	return fmt.Sprintf("%d remote-access tools, %d USB devices, %d displays, %d network interfaces, %d sessions",
		len(sn.GetRemoteAccess().GetTools()), len(sn.GetUsb().GetDevices()), len(sn.GetDisplays().GetDisplays()),
		len(sn.GetNetwork().GetInterfaces()), len(sn.GetSessions().GetCurrent()))
}

// Diff lists what changed from one snapshot of a device to the next, in
// human terms, family by family: identity, collection, remote access,
// USB, peripherals, displays, network, locale, media, accounts, sessions.
// Scan times and activity counts are not changes. It is pure and
// unbounded: Changes caps it.
func Diff(prev, cur *agentv1.HostSnapshot) []Change {
	var out []Change
	add := func(family, format string, args ...any) {
		out = append(out, Change{Family: family, Text: fmt.Sprintf(format, args...)})
	}
	// listed adds a change per item that appeared (on) and per item
	// that is gone (off).
	listed := func(family, on, off string, appeared, gone []string) {
		for _, l := range appeared {
			add(family, "%s: %s", on, l)
		}
		for _, l := range gone {
			add(family, "%s: %s", off, l)
		}
	}
	changed := func(family, what, a, b string) {
		if a != b {
			add(family, "%s changed: %s → %s", what, cmp.Or(a, "none"), cmp.Or(b, "none"))
		}
	}

	pi, ci := prev.GetIdentity(), cur.GetIdentity()
	changed("identity", "host name", pi.GetHostname(), ci.GetHostname())
	changed("identity", "operating system", OSName(prev), OSName(cur))
	changed("identity", "agent version", pi.GetAgentVersion(), ci.GetAgentVersion())
	changed("identity", "hardware serial", pi.GetSerialNumber(), ci.GetSerialNumber())
	changed("identity", "hardware", joinNonEmpty(" ", pi.GetHardwareVendor(), pi.GetHardwareModel()), joinNonEmpty(" ", ci.GetHardwareVendor(), ci.GetHardwareModel()))

	pstate := map[string]agentv1.SignalStatus_State{}
	for _, st := range prev.GetSignals() {
		pstate[st.GetName()] = st.GetState()
	}
	for _, st := range cur.GetSignals() {
		was, ok := pstate[st.GetName()]
		switch now := st.GetState(); {
		case !ok || was == now:
		case now == agentv1.SignalStatus_STATE_OK:
			add("collection", "%s is collected again", st.GetName())
		default:
			add("collection", "%s", joinNonEmpty(": ", st.GetName()+" "+SignalState(now), st.GetMessage()))
		}
	}

	ptools := map[string]*agentv1.RemoteTool{}
	for _, t := range prev.GetRemoteAccess().GetTools() {
		ptools[t.GetToolId()] = t
	}
	ctools := map[string]bool{}
	for _, t := range cur.GetRemoteAccess().GetTools() {
		ctools[t.GetToolId()] = true
		name := cmp.Or(t.GetName(), t.GetToolId())
		running := len(t.GetProcesses()) > 0
		p, ok := ptools[t.GetToolId()]
		switch {
		case !ok && len(t.GetInstalls()) > 0:
			add("remote access", "remote tool installed: %s%s", name, onlyIf(running, " (running)"))
		case !ok && running:
			add("remote access", "remote tool running without an install: %s from %s", name, t.GetProcesses()[0].GetPath())
		case !ok:
			add("remote access", "remote tool found: %s (%s)", name, ToolState(t))
		case running && len(p.GetProcesses()) == 0:
			add("remote access", "remote tool started: %s (%s)", name, t.GetProcesses()[0].GetPath())
		case !running && len(p.GetProcesses()) > 0:
			add("remote access", "remote tool stopped: %s", name)
		}
		if ok && len(p.GetInstalls()) == 0 && len(t.GetInstalls()) > 0 {
			add("remote access", "remote tool installed: %s", name)
		}
		if t.GetActiveSession() != p.GetActiveSession() {
			add("remote access", "remote session %s: %s", onlyIf(t.GetActiveSession(), "started")+onlyIf(!t.GetActiveSession(), "ended"), name)
		}
		if ok {
			changed("remote access", name+" ID", p.GetClientId(), t.GetClientId())
		}
	}
	for _, t := range prev.GetRemoteAccess().GetTools() {
		if !ctools[t.GetToolId()] {
			add("remote access", "remote tool removed: %s", cmp.Or(t.GetName(), t.GetToolId()))
		}
	}
	pfeat := map[string]bool{}
	for _, o := range prev.GetRemoteAccess().GetOsFeatures() {
		pfeat[o.GetKind()] = o.GetEnabled()
	}
	cfeat := map[string]bool{}
	for _, o := range cur.GetRemoteAccess().GetOsFeatures() {
		cfeat[o.GetKind()] = o.GetEnabled()
		if o.GetEnabled() != pfeat[o.GetKind()] {
			add("remote access", "OS remote access %s: %s", onlyIf(o.GetEnabled(), "enabled")+onlyIf(!o.GetEnabled(), "disabled"), o.GetKind())
		}
	}
	for _, o := range prev.GetRemoteAccess().GetOsFeatures() {
		if _, ok := cfeat[o.GetKind()]; !ok && o.GetEnabled() {
			add("remote access", "OS remote access disabled: %s", o.GetKind())
		}
	}

	appeared, gone := multisetDiff(prev.GetUsb().GetDevices(), cur.GetUsb().GetDevices(), usbLabel)
	listed("USB", "USB device appeared", "USB device removed", appeared, gone)
	appeared, gone = multisetDiff(prev.GetPeripherals().GetFindings(), cur.GetPeripherals().GetFindings(), PeripheralLabel)
	listed("peripherals", "peripheral matched", "peripheral no longer present", appeared, gone)

	appeared, gone = multisetDiff(prev.GetDisplays().GetDisplays(), cur.GetDisplays().GetDisplays(), displayLabel)
	listed("displays", "display connected", "display disconnected", appeared, gone)
	if a, b := internalActive(prev), internalActive(cur); a != nil && b != nil && *a != *b {
		add("displays", "built-in display %s", onlyIf(*b, "turned on")+onlyIf(!*b, "turned off"))
	}
	if a, b := prev.GetDisplays().GetLid(), cur.GetDisplays().GetLid(); a != b && a != agentv1.LidState_LID_STATE_UNSPECIFIED && b != agentv1.LidState_LID_STATE_UNSPECIFIED {
		add("displays", "lid %s", LidState(b))
	}

	pn, cn := prev.GetNetwork(), cur.GetNetwork()
	changed("network", "default gateway", pn.GetDefaultRoute().GetGateway(), cn.GetDefaultRoute().GetGateway())
	if a, b := pn.GetDefaultRoute().GetGatewayMac(), cn.GetDefaultRoute().GetGatewayMac(); a != "" && b != "" {
		changed("network", "gateway router (MAC)", a, b)
	}
	if a, b := pn.GetWifi(), cn.GetWifi(); a.GetSsid() != b.GetSsid() {
		changed("network", "Wi-Fi network", a.GetSsid(), b.GetSsid())
	} else if a.GetBssid() != "" && b.GetBssid() != "" {
		changed("network", "Wi-Fi access point", a.GetBssid(), b.GetBssid())
	}
	vpnLabel := func(i *agentv1.NetworkInterface) string {
		return joinNonEmpty(" ", i.GetName(), parens(joinNonEmpty(", ", IfaceKind(i.GetKind()), i.GetVpnToolId())))
	}
	upVPN := func(n *agentv1.Network) []*agentv1.NetworkInterface {
		return slices.DeleteFunc(slices.Clone(n.GetInterfaces()), func(i *agentv1.NetworkInterface) bool { return !i.GetUp() || !isVPN(i) })
	}
	appeared, gone = multisetDiff(upVPN(pn), upVPN(cn), vpnLabel)
	listed("network", "VPN or tunnel interface up", "VPN or tunnel interface down", appeared, gone)
	changed("network", "DNS servers", strings.Join(pn.GetDnsServers(), ", "), strings.Join(cn.GetDnsServers(), ", "))
	changed("network", "system proxy", ProxyLabel(pn.GetProxy()), ProxyLabel(cn.GetProxy()))

	pl, cl := prev.GetLocale(), cur.GetLocale()
	changed("locale", "time zone", pl.GetTimezone(), cl.GetTimezone())
	changed("locale", "system locale", pl.GetSystemLocale(), cl.GetSystemLocale())
	appeared, gone = multisetDiff(pl.GetKeyboardLayouts(), cl.GetKeyboardLayouts(), LayoutLabel)
	listed("locale", "keyboard layout added", "keyboard layout removed", appeared, gone)

	appeared, gone = multisetDiff(prev.GetMedia().GetFindings(), cur.GetMedia().GetFindings(), MediaFindingLabel)
	listed("media", "virtual camera, microphone or face/voice tool found", "virtual camera, microphone or face/voice tool gone", appeared, gone)

	pp, cp := prev.GetPosture(), cur.GetPosture()
	if pp.GetAdminsRead() && cp.GetAdminsRead() {
		appeared, gone = multisetDiff(pp.GetLocalAdmins(), cp.GetLocalAdmins(), func(s string) string { return s })
		listed("accounts", "local administrator added", "local administrator removed", appeared, gone)
	}
	if pp != nil && cp != nil {
		appeared, gone = multisetDiff(pp.GetInteractiveAccounts(), cp.GetInteractiveAccounts(), func(s string) string { return s })
		listed("accounts", "account signed in for the first time", "account gone", appeared, gone)
	}

	appeared, gone = multisetDiff(prev.GetSessions().GetCurrent(), cur.GetSessions().GetCurrent(), sessionLabel)
	listed("sessions", "session opened", "session ended", appeared, gone)
	for _, l := range cur.GetSessions().GetHistory() {
		if t := l.GetType(); t != agentv1.LoginSession_TYPE_CONSOLE && t != agentv1.LoginSession_TYPE_UNSPECIFIED {
			add("sessions", "remote login recorded: %s", sessionLabel(l))
		}
	}
	return out
}

// internalActive is whether the built-in panel is in use (nil without one).
func internalActive(sn *agentv1.HostSnapshot) *bool {
	for _, d := range sn.GetDisplays().GetDisplays() {
		if d.GetInternal() {
			a := d.GetActive()
			return &a
		}
	}
	return nil
}

// multisetDiff compares two lists by label: the labels cur has more of
// than prev (appeared), and those it has fewer of (gone), each in list
// order.
func multisetDiff[T any](prev, cur []T, label func(T) string) (appeared, gone []string) {
	count := map[string]int{}
	for _, p := range prev {
		count[label(p)]++
	}
	for _, c := range cur {
		l := label(c)
		if count[l] > 0 {
			count[l]--
			continue
		}
		appeared = append(appeared, l)
	}
	for _, p := range prev {
		if l := label(p); count[l] > 0 {
			count[l]--
			gone = append(gone, l)
		}
	}
	return appeared, gone
}
