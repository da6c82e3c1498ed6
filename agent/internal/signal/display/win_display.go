package display

// Pure part of the Windows display reader: it takes the monitors SetupAPI
// lists (instance id and the EDID value of the device key) and the targets
// the DisplayConfig API reports (monitor device path, output technology,
// whether the path is active) and builds the Displays message. It compiles
// and is tested on every OS; display_windows.go gathers the inputs.

import (
	"sort"
	"strings"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// winMonitor is one present monitor device node.
type winMonitor struct {
	// InstanceID is e.g. `DISPLAY\LNX7771\5&2a1b3c4d&0&UID4353`.
	InstanceID string `json:"instance_id"`
	// EDID is the "EDID" value of the device's hardware key; nil when
	// absent.
	EDID []byte `json:"-"`
}

// winTarget is one display target as DISPLAYCONFIG_TARGET_DEVICE_NAME
// describes it.
type winTarget struct {
	// MonitorDevicePath is the monitor's device interface path, e.g.
	// `\\?\DISPLAY#LNX7771#5&2a1b3c4d&0&UID4353#{e6f07b5f-ee97-4a90-b076-33f57bf4eaa7}`.
	MonitorDevicePath string `json:"monitor_device_path"`
	// OutputTechnology is a DISPLAYCONFIG_VIDEO_OUTPUT_TECHNOLOGY value.
	OutputTechnology uint32 `json:"output_technology"`
	// Active is true when the target is on a path QueryDisplayConfig
	// returns with QDC_ONLY_ACTIVE_PATHS.
	Active bool `json:"active"`
}

// DISPLAYCONFIG_VIDEO_OUTPUT_TECHNOLOGY values (wingdi.h) that denote a
// built-in panel.
const (
	winTechLVDS                = 6
	winTechDisplayPortEmbedded = 11
	winTechUDIEmbedded         = 13
	winTechInternal            = 0x80000000
)

// winIsInternalTech reports whether an output technology is a built-in
// panel's: LVDS, embedded DisplayPort (eDP), embedded UDI, or "internal"
// (the adapter's own, undocumented connection).
func winIsInternalTech(t uint32) bool {
	switch t {
	case winTechLVDS, winTechDisplayPortEmbedded, winTechUDIEmbedded, winTechInternal:
		return true
	}
	return false
}

// winDevicePathInstanceID turns a device interface path into the device
// instance id it belongs to: the `\\?\` prefix and the trailing
// `#{interface class guid}` are dropped and '#' becomes '\'. It returns ""
// for anything else.
func winDevicePathInstanceID(path string) string {
	rest, ok := strings.CutPrefix(path, `\\?\`)
	if !ok {
		return ""
	}
	i := strings.LastIndexByte(rest, '#')
	if i <= 0 || !strings.HasPrefix(rest[i+1:], "{") || !strings.HasSuffix(rest, "}") {
		return ""
	}
	rest = rest[:i]
	if strings.Count(rest, "#") != 2 {
		return ""
	}
	return strings.ReplaceAll(rest, "#", `\`)
}

// winBuildDisplays makes one Display per monitor, connector = instance
// id, decoded from its EDID by FromEDID. A monitor is internal when a
// target naming it has an internal output technology, active when a
// target naming it is active. Targets naming no listed monitor are
// ignored. Displays are sorted by connector; the lid state is not known.
func winBuildDisplays(mons []winMonitor, targets []winTarget) *agentv1.Displays {
	internal := map[string]bool{}
	active := map[string]bool{}
	for _, t := range targets {
		id := strings.ToUpper(winDevicePathInstanceID(t.MonitorDevicePath))
		if id == "" {
			continue
		}
		internal[id] = internal[id] || winIsInternalTech(t.OutputTechnology)
		active[id] = active[id] || t.Active
	}
	out := &agentv1.Displays{}
	seen := map[string]bool{}
	for _, m := range mons {
		key := strings.ToUpper(m.InstanceID)
		if m.InstanceID == "" || seen[key] {
			continue
		}
		seen[key] = true
		d := FromEDID(m.InstanceID, m.EDID)
		d.Internal = internal[key]
		d.Active = active[key]
		out.Displays = append(out.Displays, d)
	}
	sort.SliceStable(out.Displays, func(i, j int) bool { return out.Displays[i].GetConnector() < out.Displays[j].GetConnector() })
	return out
}
