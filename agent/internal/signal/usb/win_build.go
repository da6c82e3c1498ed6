package usb

import (
	"cmp"
	"sort"
	"strings"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// winPnPRecord is one device node as SetupAPI describes it. The live
// reader fills it from SetupDiGetDeviceInstanceId, SPDRP_HARDWAREID,
// SPDRP_COMPATIBLEIDS, DEVPKEY_Device_BusReportedDeviceDesc, SPDRP_SERVICE,
// SPDRP_LOCATION_PATHS / SPDRP_LOCATION_INFORMATION and DEVPKEY_Device_Parent;
// tests fill it from testdata/win/*.json.
type winPnPRecord struct {
	InstanceID    string   `json:"instance_id"`
	Parent        string   `json:"parent,omitempty"`
	HardwareIDs   []string `json:"hardware_ids,omitempty"`
	CompatibleIDs []string `json:"compatible_ids,omitempty"`
	// BusDesc is the product string descriptor as the bus reported it.
	BusDesc string `json:"bus_desc,omitempty"`
	Service string `json:"service,omitempty"`
	// Location is the first location path, else the location
	// information ("Port_#0002.Hub_#0001").
	Location string `json:"location,omitempty"`
}

// winHIDCollection is one HID top-level collection (one HID device node)
// as HidP_GetCaps and HidP_GetValueCaps(HidP_Input) describe it.
type winHIDCollection struct {
	InstanceID string           `json:"instance_id"`
	Parent     string           `json:"parent,omitempty"`
	UsagePage  uint16           `json:"usage_page"`
	Usage      uint16           `json:"usage"`
	Values     []winHIDValueCap `json:"values,omitempty"`
}

// winHIDValueCap is the part of a HIDP_VALUE_CAPS the summary needs: a
// usage (or usage range, UsageMin..UsageMax) and whether it is absolute.
type winHIDValueCap struct {
	UsagePage uint16 `json:"usage_page"`
	UsageMin  uint16 `json:"usage_min"`
	UsageMax  uint16 `json:"usage_max"`
	Absolute  bool   `json:"absolute"`
}

// winHIDSummary condenses top-level collections into a HidSummary with the
// rules of ReportDescriptor.Summary: a Generic Desktop Keyboard collection
// is a keyboard, a Consumer Control collection consumer control; a Generic
// Desktop Mouse/Pointer or any Digitizers-page collection whose input
// value caps hold Generic Desktop X and Y is a pointer, absolute or
// relative as both X and Y are; absolute Digitizers-page pointers count as
// digitizer.
func winHIDSummary(caps []winHIDCollection) *agentv1.HidSummary {
	s := &agentv1.HidSummary{}
	for _, c := range caps {
		switch {
		case c.UsagePage == PageGenericDesktop && c.Usage == UsageKeyboard:
			s.Keyboard = true
		case c.UsagePage == PageConsumer && c.Usage == UsageConsumerControl:
			s.ConsumerControl = true
		}
		pointer := c.UsagePage == PageDigitizer ||
			c.UsagePage == PageGenericDesktop && (c.Usage == UsageMouse || c.Usage == UsagePointer)
		if !pointer {
			continue
		}
		var absX, absY, relX, relY bool
		for _, v := range c.Values {
			if v.UsagePage != PageGenericDesktop || v.UsageMin > v.UsageMax {
				continue
			}
			hasX := v.UsageMin <= UsageX && UsageX <= v.UsageMax
			hasY := v.UsageMin <= UsageY && UsageY <= v.UsageMax
			if v.Absolute {
				absX, absY = absX || hasX, absY || hasY
			} else {
				relX, relY = relX || hasX, relY || hasY
			}
		}
		if relX && relY {
			s.RelativeMouse = true
		}
		if absX && absY {
			if c.UsagePage == PageDigitizer {
				s.Digitizer = true
			} else {
				s.AbsolutePointer = true
			}
		}
	}
	return s
}

// winDeviceOnlyClass reports whether a class code may appear only in a
// device descriptor (usb.org "Defined Class Codes": 09h hub, 11h
// billboard).
func winDeviceOnlyClass(c uint8) bool { return c == ClassHub || c == 0x11 }

// winDev is a device being assembled.
type winDev struct {
	key  string // upper-cased instance id
	id   winInstanceID
	dev  *agentv1.UsbDevice
	hids []winHIDCollection
}

// winBuild groups PnP records into USB devices:
//
//   - "USB\VID_&PID_\<inst>" records are devices (root hubs are skipped);
//     their serial is the instance part when it has no '&', their
//     bcdDevice the REV_ of a hardware id, their product the bus-reported
//     description;
//   - "USB\VID_&PID_&MI_xx\<inst>" records are interfaces of a composite
//     device, attached to their Parent, or when the parent is unknown to
//     the only device with the same VID/PID;
//   - a composite parent's class comes from its "DevClass_" compatible id;
//     a single-interface device's "Class_" compatible id comes (for
//     bDeviceClass 0) from its interface descriptor, so it becomes
//     interface 0, and the device class too when it is a device-only
//     class (hub);
//   - HID collections and USBSTOR/SCSI logical units are attached through
//     their parent (a device or one of its interfaces), or by VID/PID/MI
//     (HID) or serial (storage) when the parent is unknown and the match
//     is unique.
//
// A device without a location is named by its instance id. Records that
// cannot be parsed or attached are skipped. The devices are
// Finish()ed and sorted by location.
func winBuild(recs []winPnPRecord, hids []winHIDCollection) []*agentv1.UsbDevice {
	byKey := map[string]*winDev{}
	var devs []*winDev
	for _, r := range recs {
		id, err := winParseID(r.InstanceID)
		if err != nil || id.Enumerator != "USB" || !id.HasVIDPID || id.HasMI || id.RootHub {
			continue
		}
		key := strings.ToUpper(r.InstanceID)
		if byKey[key] != nil {
			continue
		}
		d := &agentv1.UsbDevice{
			// A device without a location path or location
			// information (a virtual or registry-only device node)
			// is named by its instance id, which is unique.
			Location:  cmp.Or(r.Location, r.InstanceID),
			VendorId:  uint32(id.VID),
			ProductId: uint32(id.PID),
			Product:   r.BusDesc,
			Serial:    winSerial(id),
		}
		if rev, ok := winParseHardwareIDs(r.HardwareIDs); ok {
			d.BcdDevice = uint32(rev)
		}
		c := winParseCompatibleIDs(r.CompatibleIDs)
		switch {
		case c.HasTriple && c.DevClass:
			d.DeviceClass, d.DeviceSubclass, d.DeviceProtocol = uint32(c.Triple.Class), uint32(c.Triple.SubClass), uint32(c.Triple.Protocol)
		case c.HasTriple && !c.Composite:
			d.Interfaces = append(d.Interfaces, &agentv1.UsbInterface{
				Class: uint32(c.Triple.Class), Subclass: uint32(c.Triple.SubClass), Protocol: uint32(c.Triple.Protocol),
				Driver: r.Service,
			})
			if winDeviceOnlyClass(c.Triple.Class) {
				d.DeviceClass, d.DeviceSubclass, d.DeviceProtocol = uint32(c.Triple.Class), uint32(c.Triple.SubClass), uint32(c.Triple.Protocol)
			}
		}
		w := &winDev{key: key, id: id, dev: d}
		byKey[key] = w
		devs = append(devs, w)
	}

	// owner maps the upper-cased instance id of a device or interface to
	// its device.
	owner := map[string]*winDev{}
	for k, w := range byKey {
		owner[k] = w
	}
	// unique returns the only device matching ok, or nil.
	unique := func(ok func(*winDev) bool) *winDev {
		var found *winDev
		for _, w := range devs {
			if ok(w) {
				if found != nil {
					return nil
				}
				found = w
			}
		}
		return found
	}
	// miOwner maps "VID/PID/MI" to the devices whose interface it is.
	type miKey struct {
		vid, pid uint16
		mi       uint8
	}
	miOwner := map[miKey][]*winDev{}

	for _, r := range recs {
		id, err := winParseID(r.InstanceID)
		if err != nil || id.Enumerator != "USB" || !id.HasVIDPID || !id.HasMI {
			continue
		}
		w := owner[strings.ToUpper(r.Parent)]
		if w == nil || w.id.HasMI {
			w = unique(func(w *winDev) bool { return w.id.VID == id.VID && w.id.PID == id.PID })
		}
		k := miKey{id.VID, id.PID, id.MI}
		if w == nil {
			// Remember the unattributed interface so that a HID
			// collection with the same VID/PID/MI is not pinned on
			// the one device that could be found.
			miOwner[k] = append(miOwner[k], nil)
			continue
		}
		c := winParseCompatibleIDs(r.CompatibleIDs)
		w.dev.Interfaces = append(w.dev.Interfaces, &agentv1.UsbInterface{
			Number: uint32(id.MI),
			Class:  uint32(c.Triple.Class), Subclass: uint32(c.Triple.SubClass), Protocol: uint32(c.Triple.Protocol),
			Driver: r.Service,
		})
		owner[strings.ToUpper(r.InstanceID)] = w
		miOwner[k] = append(miOwner[k], w)
	}

	for _, h := range hids {
		id, err := winParseID(h.InstanceID)
		if err != nil || id.Enumerator != "HID" {
			continue
		}
		w := owner[strings.ToUpper(h.Parent)]
		if w == nil && id.HasVIDPID {
			if id.HasMI {
				if ws := miOwner[miKey{id.VID, id.PID, id.MI}]; len(ws) == 1 {
					w = ws[0]
				}
			} else {
				w = unique(func(w *winDev) bool { return w.id.VID == id.VID && w.id.PID == id.PID })
			}
		}
		if w != nil {
			w.hids = append(w.hids, h)
		}
	}

	for _, r := range recs {
		st, err := winParseStorageID(r.InstanceID)
		if err != nil {
			continue
		}
		w := owner[strings.ToUpper(r.Parent)]
		if w == nil && st.Serial != "" {
			w = unique(func(w *winDev) bool { return strings.EqualFold(w.dev.Serial, st.Serial) })
		}
		if w == nil {
			continue
		}
		// Several logical units: keep the first, but a CD-ROM wins (it
		// is what KVMs emulate to boot or install from).
		if w.dev.MassStorage == nil || (!w.dev.MassStorage.Cdrom && st.MS.Cdrom) {
			w.dev.MassStorage = st.MS
		}
	}

	sort.SliceStable(devs, func(i, j int) bool { return devs[i].key < devs[j].key })
	out := make([]*agentv1.UsbDevice, 0, len(devs))
	for _, w := range devs {
		if len(w.hids) > 0 {
			w.dev.Hid = winHIDSummary(w.hids)
		}
		Finish(w.dev)
		out = append(out, w.dev)
	}
	Sort(out)
	return out
}
