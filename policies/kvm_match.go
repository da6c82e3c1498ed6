package policies

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Peripheral finding kinds.
const (
	FindingUSBIdentity   = "usb_identity"   // a catalog family's USB identity
	FindingEDIDIdentity  = "edid_identity"  // a catalog family's EDID identity
	FindingPresetSerial  = "preset_serial"  // a family's hard-coded default serial
	FindingCompositeHID  = "composite_hid"  // keyboard + absolute pointer on one device
	FindingGadgetVendor  = "gadget_vendor"  // gadget/hobbyist vendor id with a HID function
	FindingVendorStrings = "vendor_strings" // a vendor id whose strings are not the vendor's
	FindingCaptureEDID   = "capture_edid"   // an HDMI-capture bridge's EDID
)

const usbClassHub, usbClassHID = 0x09, 0x03

// MatchPeripherals matches USB devices and displays against the catalog
// and the heuristics that survive disguise. Hubs are matched against the
// catalog's identities only (KVM dongles and BMCs present virtual hubs),
// never the heuristics. Findings are ordered by source, device, kind and
// family.
func MatchPeripherals(cat *KVMCatalog, u *agentv1.Usb, ds *agentv1.Displays) *agentv1.Peripherals {
	out := &agentv1.Peripherals{CatalogVersion: cat.Version}
	for _, d := range u.GetDevices() {
		out.Findings = append(out.Findings, cat.matchUSB(d)...)
	}
	for _, d := range ds.GetDisplays() {
		out.Findings = append(out.Findings, cat.matchDisplay(d)...)
	}
	sort.SliceStable(out.Findings, func(i, j int) bool {
		a, b := out.Findings[i], out.Findings[j]
		return cmpStrings(a.Source, b.Source, a.Device, b.Device, a.Kind, b.Kind, a.Family, b.Family) < 0
	})
	return out
}

func cmpStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}

func hexID(v uint32) string { return string(appendHexID(make([]byte, 0, 6), v)) }

// appendHexID appends v as fmt's "0x%04x" does (the collector formats
// every report's USB ids; fmt costs more than the rest of the key).
func appendHexID(b []byte, v uint32) []byte {
	b = append(b, "0x"...)
	for n := uint32(0xfff); n > 0 && v <= n; n >>= 4 {
		b = append(b, '0')
	}
	return strconv.AppendUint(b, uint64(v), 16)
}

func field(name, value string) *agentv1.MatchedField {
	return &agentv1.MatchedField{Field: name, Value: value}
}

// textMatch compares a device string with a catalog pattern: case-
// insensitive after trimming; a trailing "*" matches any suffix.
func textMatch(value, pattern string) bool {
	v, p := strings.TrimSpace(value), strings.TrimSpace(pattern)
	if prefix, ok := strings.CutSuffix(p, "*"); ok {
		return len(v) >= len(prefix) && strings.EqualFold(v[:len(prefix)], prefix)
	}
	return strings.EqualFold(v, p)
}

func anyText(value string, patterns []string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return textMatch(value, p) })
}

// finding is one finding about a device; a catalog family, when given,
// names it.
func finding(source, device, kind string, f *KVMFamily, name string, fields []*agentv1.MatchedField) *agentv1.PeripheralFinding {
	pf := &agentv1.PeripheralFinding{Kind: kind, Name: name, Source: source, Device: device, Fields: fields}
	if f != nil {
		pf.Family, pf.Name, pf.Category = f.ID, f.Name, f.Category
	}
	return pf
}

// usbIndex says which of a catalog's USB identities may match a device
// with a given vendor id: those naming it and those naming none, in
// catalog order (family, then identity). Most identities name a vendor,
// and looking at each of them for every device of every snapshot cost
// more than the rest of the matching. presets are the families with
// preset USB serials.
type usbIndex struct {
	byVendor  map[uint32][]usbRef
	anyVendor []usbRef // the identities naming no vendor id
	presets   []int
}

type usbRef struct{ family, identity int }

func newUSBIndex(c *KVMCatalog) *usbIndex {
	x := &usbIndex{byVendor: map[uint32][]usbRef{}}
	for i := range c.Families {
		f := &c.Families[i]
		for j := range f.USB {
			if v := f.USB[j].VendorID; v != nil {
				x.byVendor[*v] = append(x.byVendor[*v], usbRef{i, j})
			} else {
				x.anyVendor = append(x.anyVendor, usbRef{i, j})
			}
		}
		if len(f.PresetSerials.USB) > 0 {
			x.presets = append(x.presets, i)
		}
	}
	for v, refs := range x.byVendor {
		refs = append(refs, x.anyVendor...)
		slices.SortFunc(refs, func(a, b usbRef) int {
			if a.family != b.family {
				return a.family - b.family
			}
			return a.identity - b.identity
		})
		x.byVendor[v] = refs
	}
	return x
}

func (c *KVMCatalog) matchUSB(d *agentv1.UsbDevice) []*agentv1.PeripheralFinding {
	var out []*agentv1.PeripheralFinding
	add := func(kind string, f *KVMFamily, name string, fields ...*agentv1.MatchedField) {
		out = append(out, finding("usb", d.GetLocation(), kind, f, name, fields))
	}
	hub := d.GetDeviceClass() == usbClassHub
	idx := c.usb
	if idx == nil { // a catalog ParseKVM did not make
		idx = newUSBIndex(c)
	}
	refs, ok := idx.byVendor[d.GetVendorId()]
	if !ok {
		refs = idx.anyVendor
	}
	// Each family's longest match (the first of the longest), family by
	// family. The findings' order does not matter: MatchPeripherals sorts
	// them by kind and family.
	for k := 0; k < len(refs); {
		f := &c.Families[refs[k].family]
		var best []*agentv1.MatchedField
		for ; k < len(refs) && &c.Families[refs[k].family] == f; k++ {
			if m, ok := f.USB[refs[k].identity].match(d); ok && len(m) > len(best) {
				best = m
			}
		}
		if best != nil {
			add(FindingUSBIdentity, f, "", best...)
		}
	}
	if !hub && d.GetSerial() != "" {
		for _, i := range idx.presets {
			if f := &c.Families[i]; anyText(d.GetSerial(), f.PresetSerials.USB) {
				add(FindingPresetSerial, f, "", field("serial", d.GetSerial()))
			}
		}
	}
	if hub {
		return out
	}
	if h := d.GetHid(); h.GetKeyboard() && h.GetAbsolutePointer() {
		fs := []*agentv1.MatchedField{field("hid.keyboard", "true"), field("hid.absolute_pointer", "true")}
		if h.GetRelativeMouse() {
			fs = append(fs, field("hid.relative_mouse", "true"))
		}
		if ms := d.GetMassStorage(); ms != nil {
			if ms.GetCdrom() {
				fs = append(fs, field("mass_storage.cdrom", "true"))
			}
			fs = append(fs, field("mass_storage.vendor", ms.GetVendor()), field("mass_storage.product", ms.GetProduct()))
		}
		if d.GetNetworkFunction() {
			fs = append(fs, field("network_function", "true"))
		}
		add(FindingCompositeHID, nil, "keyboard and absolute pointer on one device", fs...)
	}
	if hasHID(d) {
		for _, g := range c.GadgetVendors {
			if d.GetVendorId() == g.VendorID && !slices.Contains(g.ExceptProducts, d.GetProductId()) {
				add(FindingGadgetVendor, nil, "HID device with the vendor id of "+g.Name,
					field("vendor_id", hexID(d.GetVendorId())), field("interfaces.class", hexID(usbClassHID)))
			}
		}
	}
	for _, v := range c.VendorStrings {
		if d.GetVendorId() == v.VendorID && d.GetManufacturer() != "" && !anyText(d.GetManufacturer(), v.Manufacturers) {
			add(FindingVendorStrings, nil, v.Name+" vendor id with a manufacturer string "+v.Name+" does not use",
				field("vendor_id", hexID(d.GetVendorId())), field("manufacturer", d.GetManufacturer()))
		}
	}
	return out
}

func hasHID(d *agentv1.UsbDevice) bool {
	h := d.GetHid()
	if h.GetKeyboard() || h.GetRelativeMouse() || h.GetAbsolutePointer() || h.GetDigitizer() || h.GetConsumerControl() {
		return true
	}
	return slices.ContainsFunc(d.GetInterfaces(), func(i *agentv1.UsbInterface) bool { return i.GetClass() == usbClassHID })
}

// match reports whether every field the identity sets matches, and which
// (built only on a match: most identities fail on the first field).
func (id *USBIdentity) match(d *agentv1.UsbDevice) ([]*agentv1.MatchedField, bool) {
	ms := d.GetMassStorage()
	num := func(want *uint32, got uint32) bool { return want == nil || *want == got }
	str := func(want, got string) bool { return want == "" || textMatch(got, want) }
	if !num(id.VendorID, d.GetVendorId()) || !num(id.ProductID, d.GetProductId()) ||
		!str(id.Manufacturer, d.GetManufacturer()) || !str(id.Product, d.GetProduct()) ||
		!str(id.Configuration, d.GetConfiguration()) ||
		(id.StorageVendor != "" || id.StorageProduct != "") && ms == nil ||
		!str(id.StorageVendor, ms.GetVendor()) || !str(id.StorageProduct, ms.GetProduct()) {
		return nil, false
	}
	var m []*agentv1.MatchedField
	if id.VendorID != nil {
		m = append(m, field("vendor_id", hexID(d.GetVendorId())))
	}
	if id.ProductID != nil {
		m = append(m, field("product_id", hexID(d.GetProductId())))
	}
	for _, f := range []struct{ name, want, got string }{
		{"manufacturer", id.Manufacturer, d.GetManufacturer()}, {"product", id.Product, d.GetProduct()},
		{"configuration", id.Configuration, d.GetConfiguration()},
		{"mass_storage.vendor", id.StorageVendor, ms.GetVendor()}, {"mass_storage.product", id.StorageProduct, ms.GetProduct()},
	} {
		if f.want != "" {
			m = append(m, field(f.name, f.got))
		}
	}
	return m, true
}

func (c *KVMCatalog) matchDisplay(d *agentv1.Display) []*agentv1.PeripheralFinding {
	var out []*agentv1.PeripheralFinding
	add := func(kind string, f *KVMFamily, name string, fields ...*agentv1.MatchedField) {
		out = append(out, finding("display", d.GetConnector(), kind, f, name, fields))
	}
	for i := range c.Families {
		f := &c.Families[i]
		var best []*agentv1.MatchedField
		for j := range f.EDID { // by pointer: every device meets every identity
			if m, ok := f.EDID[j].match(d); ok && len(m) > len(best) {
				best = m
			}
		}
		if best != nil {
			add(FindingEDIDIdentity, f, "", best...)
		}
		var serial []*agentv1.MatchedField
		if d.GetSerialString() != "" && anyText(d.GetSerialString(), f.PresetSerials.EDID) {
			serial = append(serial, field("serial_string", d.GetSerialString()))
		}
		if slices.Contains(f.PresetSerials.EDIDNumbers, d.GetSerialNumber()) {
			serial = append(serial, field("serial_number", fmt.Sprintf("0x%08x", d.GetSerialNumber())))
		}
		if serial != nil {
			add(FindingPresetSerial, f, "", serial...)
		}
	}
	// A bridge's manufacturer id is also a TV maker's: it counts only with
	// the reference EDID's 0×0 cm size and serial.
	var capture []*agentv1.MatchedField
	if ce := c.CaptureEDID; slices.Contains(ce.ManufacturerIDs, d.GetManufacturerId()) &&
		d.GetWidthMm() == 0 && d.GetHeightMm() == 0 && slices.Contains(ce.SerialNumbers, d.GetSerialNumber()) {
		capture = append(capture, field("manufacturer_id", d.GetManufacturerId()), field("width_mm", "0"), field("height_mm", "0"),
			field("serial_number", fmt.Sprintf("0x%08x", d.GetSerialNumber())))
	}
	if d.GetMonitorName() != "" && anyText(d.GetMonitorName(), c.CaptureEDID.MonitorNames) {
		capture = append(capture, field("monitor_name", d.GetMonitorName()))
	}
	if capture != nil {
		add(FindingCaptureEDID, nil, "HDMI-capture bridge EDID", capture...)
	}
	return out
}

func (id *EDIDIdentity) match(d *agentv1.Display) ([]*agentv1.MatchedField, bool) {
	str := func(want, got string) bool { return want == "" || textMatch(got, want) }
	if !str(id.ManufacturerID, d.GetManufacturerId()) || id.ProductCode != nil && *id.ProductCode != d.GetProductCode() ||
		!str(id.MonitorName, d.GetMonitorName()) || !str(id.SerialString, d.GetSerialString()) {
		return nil, false
	}
	var m []*agentv1.MatchedField
	if id.ManufacturerID != "" {
		m = append(m, field("manufacturer_id", d.GetManufacturerId()))
	}
	if id.ProductCode != nil {
		m = append(m, field("product_code", hexID(d.GetProductCode())))
	}
	if id.MonitorName != "" {
		m = append(m, field("monitor_name", d.GetMonitorName()))
	}
	if id.SerialString != "" {
		m = append(m, field("serial_string", d.GetSerialString()))
	}
	return m, true
}

// PeripheralSerial is a serial number that identifies one physical
// peripheral across the fleet.
type PeripheralSerial struct {
	// Key identifies the peripheral: source, ids and serial, e.g.
	// "usb 0x046d:0xc52b 1A2B3C4D" or "display DEL 0x2013 3S5GQ23".
	Key string
	// Device is the USB location or display connector on this machine.
	Device string
}

// PeripheralSerials returns the serials worth correlating across the
// fleet: those of USB devices with a HID function and of external
// displays, except empty serials and the catalog's common ones. (Internal
// webcams, card readers and panels of one laptop model may share a serial
// across a whole fleet; a keyboard, mouse, KVM or monitor may not.)
func PeripheralSerials(cat *KVMCatalog, u *agentv1.Usb, ds *agentv1.Displays) []PeripheralSerial {
	// The keys are appended to one buffer and cut from one string: the
	// collector takes a dozen from every snapshot it receives.
	var (
		buf     = make([]byte, 0, 32*(len(u.GetDevices())+len(ds.GetDisplays())))
		out     = make([]PeripheralSerial, 0, len(u.GetDevices())+len(ds.GetDisplays()))
		endsBuf [32]int
		ends    = endsBuf[:0] // of each key in buf
	)
	common := func(s string) bool { return strings.TrimSpace(s) == "" || anyText(s, cat.CommonSerials) }
	for _, d := range u.GetDevices() {
		if d.GetDeviceClass() == usbClassHub || !hasHID(d) || common(d.GetSerial()) {
			continue
		}
		buf = append(buf, "usb "...)
		buf = appendHexID(buf, d.GetVendorId())
		buf = append(buf, ':')
		buf = appendHexID(buf, d.GetProductId())
		buf = append(buf, ' ')
		buf = append(buf, strings.TrimSpace(d.GetSerial())...)
		out, ends = append(out, PeripheralSerial{Device: d.GetLocation()}), append(ends, len(buf))
	}
	for _, d := range ds.GetDisplays() {
		if d.GetInternal() || d.GetManufacturerId() == "" {
			continue
		}
		serial := strings.TrimSpace(d.GetSerialString())
		if common(serial) {
			serial = ""
			if n := d.GetSerialNumber(); n != 0 && !common(fmt.Sprintf("0x%08x", n)) {
				serial = fmt.Sprintf("0x%08x", n)
			}
		}
		if serial == "" {
			continue
		}
		buf = append(buf, "display "...)
		buf = append(buf, d.GetManufacturerId()...)
		buf = append(buf, ' ')
		buf = appendHexID(buf, d.GetProductCode())
		buf = append(buf, ' ')
		buf = append(buf, serial...)
		out, ends = append(out, PeripheralSerial{Device: d.GetConnector()}), append(ends, len(buf))
	}
	if len(out) == 0 {
		return nil
	}
	keys, start := string(buf), 0
	for i, end := range ends {
		out[i].Key, start = keys[start:end], end
	}
	return out
}
