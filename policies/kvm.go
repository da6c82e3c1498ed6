package policies

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
)

// KVMFile is the KVM catalog's path in the policies tree.
const KVMFile = "catalog/kvm.yaml"

// KVM family categories.
const (
	KVMCategoryIPKVM      = "ip_kvm"         // network KVM that drives the laptop over USB + HDMI
	KVMCategoryHIDBridge  = "hid_bridge"     // serial/network → USB HID bridge chip or firmware
	KVMCategoryEnterprise = "enterprise_kvm" // remote-console KVM dongle (CIM), KVM-over-IP or extender
	KVMCategorySwitch     = "kvm_switch"     // desk KVM switch: local, not remote, operation
	KVMCategoryBMC        = "bmc"            // server management controller's virtual devices
	KVMCategoryCapture    = "capture"        // HDMI capture bridge whose EDID the laptop sees
	KVMCategoryJiggler    = "jiggler"        // mouse-jiggler or HID-injection hobby hardware
)

var kvmCategories = []string{KVMCategoryIPKVM, KVMCategoryHIDBridge, KVMCategoryEnterprise,
	KVMCategorySwitch, KVMCategoryBMC, KVMCategoryCapture, KVMCategoryJiggler}

// KVMCatalog lists IP-KVMs, HID bridges, KVM dongles, BMC virtual devices
// and jiggler hardware with their USB and EDID identities and preset
// serials, and the parameters of the heuristics that survive disguise.
// Both the agent (for `scan`) and the collector (authoritatively) match
// USB devices and displays against it.
type KVMCatalog struct {
	// Version is the hex SHA-256 of the file (set by the loader).
	Version  string      `yaml:"-"`
	Families []KVMFamily `yaml:"families"`
	// GadgetVendors are USB vendor ids used by Linux USB-gadget and
	// microcontroller firmwares. A device with such a vendor id and a HID
	// interface is flagged (kind gadget_vendor).
	GadgetVendors []GadgetVendor `yaml:"gadget_vendors"`
	// VendorStrings are the manufacturer strings a vendor's real devices
	// report. A device with the vendor id whose non-empty manufacturer
	// string is none of them is flagged (kind vendor_strings).
	VendorStrings []VendorStrings `yaml:"vendor_strings"`
	// CaptureEDID says what an HDMI-capture bridge's EDID looks like
	// (kind capture_edid).
	CaptureEDID CaptureEDID `yaml:"capture_edid"`
	// CommonSerials are serial numbers too common among ordinary devices to
	// correlate across the fleet (compared case-insensitively).
	CommonSerials []string `yaml:"common_serials"`
	// Sources are the references for the heuristic parameters.
	Sources []string `yaml:"sources"`

	usb *usbIndex // made by ParseKVM (see matchUSB)
}

// KVMFamily is one product family.
type KVMFamily struct {
	ID       string `yaml:"id"`       // ^[a-z0-9_]+$, unique
	Name     string `yaml:"name"`     // display name
	Category string `yaml:"category"` // one of the KVMCategory constants
	// Sources are the public references for the facts in this entry.
	Sources []string `yaml:"sources"`
	// Notes explain the entry (disguise options, caveats).
	Notes string `yaml:"notes"`
	// USB identities: a device matches an identity when every field the
	// identity sets matches.
	USB []USBIdentity `yaml:"usb"`
	// EDID identities: a display matches when every field set matches.
	EDID []EDIDIdentity `yaml:"edid"`
	// PresetSerials are hard-coded default serials the family ships with.
	PresetSerials PresetSerials `yaml:"preset_serials"`
}

// USBIdentity is one USB identity. Strings are compared case-insensitively
// after trimming spaces; a trailing "*" matches any suffix.
type USBIdentity struct {
	VendorID       *uint32 `yaml:"vendor_id"`
	ProductID      *uint32 `yaml:"product_id"`
	Manufacturer   string  `yaml:"manufacturer"`
	Product        string  `yaml:"product"`
	Configuration  string  `yaml:"configuration"`
	StorageVendor  string  `yaml:"storage_vendor"`
	StorageProduct string  `yaml:"storage_product"`
	// USBIDs is the name usb.ids gives vendor_id:product_id when the
	// identity comes from usb.ids (checked by TestKVMCatalogUSBIDs); it
	// takes no part in matching.
	USBIDs string `yaml:"usb_ids"`
}

// EDIDIdentity is one EDID identity; strings as in USBIdentity.
type EDIDIdentity struct {
	ManufacturerID string  `yaml:"manufacturer_id"` // PNP id, e.g. "TSB"
	ProductCode    *uint32 `yaml:"product_code"`
	MonitorName    string  `yaml:"monitor_name"`
	SerialString   string  `yaml:"serial_string"`
}

// PresetSerials are default serials. USB and EDID serial strings compare
// case-insensitively; EDIDNumbers are 32-bit EDID base-block serials.
type PresetSerials struct {
	USB         []string `yaml:"usb"`
	EDID        []string `yaml:"edid"`
	EDIDNumbers []uint32 `yaml:"edid_numbers"`
}

// GadgetVendor is a USB vendor id used by gadget or hobbyist firmwares.
type GadgetVendor struct {
	VendorID uint32 `yaml:"vendor_id"`
	Name     string `yaml:"name"`
	// ExceptProducts are product ids that are not gadgets (e.g. the Linux
	// Foundation's root hubs 1d6b:0001–0003).
	ExceptProducts []uint32 `yaml:"except_products"`
}

// VendorStrings are the manufacturer strings of one vendor's devices.
type VendorStrings struct {
	VendorID      uint32   `yaml:"vendor_id"`
	Name          string   `yaml:"name"`
	Manufacturers []string `yaml:"manufacturers"`
}

// CaptureEDID describes HDMI-capture-bridge EDIDs.
type CaptureEDID struct {
	// ManufacturerIDs are PNP ids of capture-bridge reference EDIDs
	// (e.g. TSB, Toshiba's TC358743/TC358749 defaults). Ordinary TVs and
	// monitors share them, so one counts only together with a 0×0 cm size
	// and one of SerialNumbers.
	ManufacturerIDs []string `yaml:"manufacturer_ids"`
	// SerialNumbers are the 32-bit EDID serials of the bridges' reference
	// EDIDs.
	SerialNumbers []uint32 `yaml:"serial_numbers"`
	// MonitorNames are KVM and capture-bridge monitor names ("*" suffix
	// allowed).
	MonitorNames []string `yaml:"monitor_names"`
}

// ParseKVM decodes a KVM catalog strictly and checks it.
func ParseKVM(b []byte) (*KVMCatalog, error) {
	var c KVMCatalog
	if err := decodeCatalog(b, "kvm catalog", &c); err != nil {
		return nil, err
	}
	c.Version = catalogVersion(b)
	c.usb = newUSBIndex(&c)
	return &c, nil
}

// KVM loads the KVM catalog from a policies tree.
func KVM(fsys fs.FS) (*KVMCatalog, error) {
	b, err := fs.ReadFile(fsys, KVMFile)
	if err != nil {
		return nil, err
	}
	return ParseKVM(b)
}

var (
	pnpRE = regexp.MustCompile(`^[A-Z]{3}$`)
	idRE  = regexp.MustCompile(`^[a-z0-9_]+$`)
)

// Validate checks ids, categories, id ranges and that every identity
// constrains enough to be specific: a vendor id with a product id or a
// string, or for an EDID a manufacturer id with a product code or a name.
// All problems are reported together.
func (c *KVMCatalog) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("kvm catalog: "+format, args...)) }
	u16 := func(where string, v *uint32) {
		if v != nil && *v > 0xffff {
			bad("%s: %#x is not a 16-bit id", where, *v)
		}
	}
	// A set string must say something: not blank, not a bare "*".
	checkPattern := func(where, p string) {
		if p != "" && strings.TrimSuffix(strings.TrimSpace(p), "*") == "" {
			bad("%s: pattern %q matches everything", where, p)
		}
	}
	if len(c.Families) == 0 {
		bad("no families")
	}
	seen := map[string]bool{}
	for i, f := range c.Families {
		where := fmt.Sprintf("families[%d] (%s)", i, f.ID)
		if !idRE.MatchString(f.ID) {
			bad("%s: id must match %s", where, idRE)
		}
		if seen[f.ID] {
			bad("%s: duplicate id", where)
		}
		seen[f.ID] = true
		if strings.TrimSpace(f.Name) == "" {
			bad("%s: no name", where)
		}
		if !slices.Contains(kvmCategories, f.Category) {
			bad("%s: category %q is not one of %s", where, f.Category, strings.Join(kvmCategories, ", "))
		}
		if len(f.Sources) == 0 {
			bad("%s: no sources", where)
		}
		if len(f.USB)+len(f.EDID)+len(f.PresetSerials.USB)+len(f.PresetSerials.EDID)+len(f.PresetSerials.EDIDNumbers) == 0 {
			bad("%s: nothing to match", where)
		}
		for j, u := range f.USB {
			w := fmt.Sprintf("%s usb[%d]", where, j)
			u16(w+" vendor_id", u.VendorID)
			u16(w+" product_id", u.ProductID)
			for _, p := range []string{u.Manufacturer, u.Product, u.Configuration, u.StorageVendor, u.StorageProduct} {
				checkPattern(w, p)
			}
			strs := strings.TrimSpace(u.Manufacturer + u.Product + u.Configuration + u.StorageVendor + u.StorageProduct)
			switch {
			case u.VendorID == nil && strs == "":
				bad("%s: needs a vendor_id or a string", w)
			case u.VendorID != nil && u.ProductID == nil && strs == "":
				bad("%s: a vendor_id alone is too broad; add product_id or a string", w)
			}
		}
		for j, e := range f.EDID {
			w := fmt.Sprintf("%s edid[%d]", where, j)
			u16(w+" product_code", e.ProductCode)
			checkPattern(w, e.MonitorName)
			checkPattern(w, e.SerialString)
			if e.ManufacturerID != "" && !pnpRE.MatchString(e.ManufacturerID) {
				bad("%s: manufacturer_id %q is not three upper-case letters", w, e.ManufacturerID)
			}
			if e.ManufacturerID == "" && e.MonitorName == "" && e.SerialString == "" ||
				e.ManufacturerID != "" && e.ProductCode == nil && e.MonitorName == "" && e.SerialString == "" {
				bad("%s: needs manufacturer_id with product_code, or a monitor_name or serial_string", w)
			}
		}
		for _, s := range append(append([]string{}, f.PresetSerials.USB...), f.PresetSerials.EDID...) {
			if strings.TrimSpace(s) == "" {
				bad("%s: empty preset serial", where)
			}
		}
	}
	for i, g := range c.GadgetVendors {
		if g.VendorID == 0 || g.VendorID > 0xffff {
			bad("gadget_vendors[%d]: vendor_id %#x out of range", i, g.VendorID)
		}
	}
	for i, v := range c.VendorStrings {
		if v.VendorID == 0 || v.VendorID > 0xffff || len(v.Manufacturers) == 0 {
			bad("vendor_strings[%d]: needs a 16-bit vendor_id and manufacturers", i)
		}
	}
	for _, p := range append(append([]string{}, c.CaptureEDID.MonitorNames...), c.CommonSerials...) {
		checkPattern("capture_edid/common_serials", p)
		if p == "" {
			bad("capture_edid/common_serials: empty string")
		}
	}
	for _, m := range c.CaptureEDID.ManufacturerIDs {
		if !pnpRE.MatchString(m) {
			bad("capture_edid: manufacturer id %q is not three upper-case letters", m)
		}
	}
	return errors.Join(errs...)
}
