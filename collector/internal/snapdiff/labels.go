package snapdiff

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// How the items of a snapshot are named. A change names its item the way
// the device page's facts do, so these are exported for that page.

var (
	signalStates = map[agentv1.SignalStatus_State]string{agentv1.SignalStatus_STATE_UNSPECIFIED: "unknown",
		agentv1.SignalStatus_STATE_OK: "collected", agentv1.SignalStatus_STATE_UNSUPPORTED: "not supported here",
		agentv1.SignalStatus_STATE_ERROR: "failed"}
	lidStates = map[agentv1.LidState]string{agentv1.LidState_LID_STATE_UNSPECIFIED: "", agentv1.LidState_LID_STATE_OPEN: "open",
		agentv1.LidState_LID_STATE_CLOSED: "closed", agentv1.LidState_LID_STATE_NONE: "no lid"}
	ifaceKinds = map[agentv1.NetworkInterface_Kind]string{agentv1.NetworkInterface_KIND_UNSPECIFIED: "other",
		agentv1.NetworkInterface_KIND_ETHERNET: "Ethernet", agentv1.NetworkInterface_KIND_WIFI: "Wi-Fi",
		agentv1.NetworkInterface_KIND_TUN: "tunnel (tun)", agentv1.NetworkInterface_KIND_TAP: "tunnel (tap)",
		agentv1.NetworkInterface_KIND_WIREGUARD: "WireGuard", agentv1.NetworkInterface_KIND_UTUN: "utun",
		agentv1.NetworkInterface_KIND_PPP: "point-to-point", agentv1.NetworkInterface_KIND_VIRTUAL: "virtual",
		agentv1.NetworkInterface_KIND_LOOPBACK: "loopback", agentv1.NetworkInterface_KIND_CELLULAR: "cellular"}
	sessionTypes = map[agentv1.LoginSession_Type]string{agentv1.LoginSession_TYPE_UNSPECIFIED: "unknown",
		agentv1.LoginSession_TYPE_CONSOLE: "console", agentv1.LoginSession_TYPE_REMOTE_DESKTOP: "remote desktop",
		agentv1.LoginSession_TYPE_SSH: "SSH", agentv1.LoginSession_TYPE_SCREEN_SHARING: "screen sharing",
		agentv1.LoginSession_TYPE_OTHER: "other"}
)

// SignalState names a signal family's collection state ("" for a value
// this collector does not know).
func SignalState(s agentv1.SignalStatus_State) string { return signalStates[s] }

// LidState names a lid state ("" when unspecified).
func LidState(s agentv1.LidState) string { return lidStates[s] }

// IfaceKind names a network interface's kind.
func IfaceKind(k agentv1.NetworkInterface_Kind) string { return ifaceKinds[k] }

// SessionType names a login session's type.
func SessionType(t agentv1.LoginSession_Type) string { return sessionTypes[t] }

// OSName names the operating system: name, version, build, kernel, arch.
func OSName(sn *agentv1.HostSnapshot) string {
	o := sn.GetIdentity().GetOs()
	return joinNonEmpty(" ", o.GetName(), o.GetVersion(), parens(joinNonEmpty(", ", onlyIf(o.GetBuild() != "", "build "+o.GetBuild()),
		onlyIf(o.GetKernel() != "", "kernel "+o.GetKernel()), o.GetArch())))
}

// ToolState says how a remote tool was seen: session, running, installed …
func ToolState(t *agentv1.RemoteTool) string {
	return joinNonEmpty(", ", onlyIf(t.GetActiveSession(), "session active now"), onlyIf(len(t.GetProcesses()) > 0, "running"),
		onlyIf(len(t.GetInstalls()) > 0, "installed"), onlyIf(len(t.GetServices()) > 0, "service registered"),
		onlyIf(len(t.GetListening()) > 0, "listening"))
}

// USBID is a USB device's vendor and product ids, as lsusb writes them.
func USBID(u *agentv1.UsbDevice) string {
	return fmt.Sprintf("%04x:%04x", u.GetVendorId(), u.GetProductId())
}

// usbLabel names a USB device: ids, manufacturer, product and serial.
func usbLabel(u *agentv1.UsbDevice) string {
	return joinNonEmpty(" ", USBID(u), u.GetManufacturer(), u.GetProduct(), onlyIf(u.GetSerial() != "", "serial "+u.GetSerial()))
}

// PeripheralLabel names a peripheral the catalogs matched.
func PeripheralLabel(p *agentv1.PeripheralFinding) string {
	return joinNonEmpty(" ", cmp.Or(p.GetName(), p.GetFamily()), parens(joinNonEmpty(", ", p.GetKind(), p.GetCategory())),
		onlyIf(p.GetDevice() != "", "on "+p.GetDevice()))
}

// DisplayModel is a display's model: its EDID name, else its product code.
func DisplayModel(d *agentv1.Display) string {
	if d.GetMonitorName() != "" {
		return d.GetMonitorName()
	}
	if d.GetProductCode() != 0 {
		return fmt.Sprintf("product %04x", d.GetProductCode())
	}
	return ""
}

// DisplaySerial is a display's serial: its EDID string, else its number.
func DisplaySerial(d *agentv1.Display) string {
	if d.GetSerialString() != "" {
		return d.GetSerialString()
	}
	if d.GetSerialNumber() != 0 {
		return strconv.FormatUint(uint64(d.GetSerialNumber()), 10)
	}
	return ""
}

// displayLabel names a display: maker, model and serial.
func displayLabel(d *agentv1.Display) string {
	return joinNonEmpty(" ", d.GetManufacturerId(), DisplayModel(d), onlyIf(DisplaySerial(d) != "", "serial "+DisplaySerial(d)),
		onlyIf(d.GetInternal(), "(built-in)"))
}

// ProxyLabel names the system proxy settings.
func ProxyLabel(p *agentv1.Proxy) string {
	return joinNonEmpty("; ", onlyIf(p.GetHttp() != "", "HTTP "+p.GetHttp()), onlyIf(p.GetHttps() != "", "HTTPS "+p.GetHttps()),
		onlyIf(p.GetPacUrl() != "", "PAC "+p.GetPacUrl()))
}

// LayoutLabel names a keyboard layout or input method and its user.
func LayoutLabel(k *agentv1.KeyboardLayout) string {
	return joinNonEmpty(" ", k.GetLayout(), onlyIf(k.GetInputMethod(), "(input method)"), onlyIf(k.GetUser() != "", "for "+k.GetUser()))
}

func sessionLabel(l *agentv1.LoginSession) string {
	return joinNonEmpty(" ", l.GetUser(), parens(joinNonEmpty(" ", SessionType(l.GetType()),
		onlyIf(l.GetSourceAddress() != "", "from "+l.GetSourceAddress()), onlyIf(l.GetTerminal() != "", "on "+l.GetTerminal()))))
}

// isVPN reports whether an interface is a VPN or tunnel: recognised by the
// catalog, or a tunnel kind (macOS utun devices only when recognised: the
// system keeps several for its own services).
func isVPN(i *agentv1.NetworkInterface) bool {
	switch i.GetKind() {
	case agentv1.NetworkInterface_KIND_TUN, agentv1.NetworkInterface_KIND_TAP, agentv1.NetworkInterface_KIND_WIREGUARD,
		agentv1.NetworkInterface_KIND_PPP:
		return true
	}
	return i.GetVpnToolId() != ""
}

// MediaFindingTool names a media finding's tool and category.
func MediaFindingTool(fi *agentv1.MediaFinding) string {
	return joinNonEmpty(" ", cmp.Or(fi.GetName(), fi.GetToolId()), parens(strings.ReplaceAll(fi.GetCategory(), "_", " ")))
}

// MediaFindingLabel names a media finding: the tool and the device.
func MediaFindingLabel(fi *agentv1.MediaFinding) string {
	return joinNonEmpty(" ", MediaFindingTool(fi), onlyIf(fi.GetDevice() != "", "by "+fi.GetDevice()))
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
