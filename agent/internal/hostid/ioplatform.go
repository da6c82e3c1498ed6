package hostid

import (
	"bytes"
	"errors"
	"fmt"

	"howett.net/plist"
)

// ioPlatform is what the agent takes from the IOPlatformExpertDevice
// registry entry on macOS.
type ioPlatform struct {
	UUID         string // IOPlatformUUID (kIOPlatformUUIDKey), canonical lower case
	Serial       string // IOPlatformSerialNumber (kIOPlatformSerialNumberKey)
	Model        string // "model", e.g. "MacBookPro18,3" (the value of hw.model)
	Manufacturer string // "manufacturer", e.g. "Apple Inc."
}

// macOSVersion is what the agent takes from
// /System/Library/CoreServices/SystemVersion.plist.
type macOSVersion struct {
	Name    string // ProductName, "macOS" (older releases: "Mac OS X")
	Version string // ProductVersion, e.g. "15.1"
	Build   string // ProductBuildVersion, e.g. "24B83"
}

// maxPlistDepth bounds the search for the platform device in the decoded
// ioreg tree. With -d2 it is the first child of the root.
const maxPlistDepth = 8

// parseIOPlatform decodes the XML property list printed by
// `ioreg -a -d2 -c IOPlatformExpertDevice` (ioreg(8): -a archives the
// registry subtree as a plist of nested dictionaries, children under
// IORegistryEntryChildren) and returns the platform device's identity.
// The device is the first dictionary, depth first, that carries
// IOPlatformUUID or IOPlatformSerialNumber, or whose IOObjectClass is
// IOPlatformExpertDevice.
func parseIOPlatform(b []byte) (ioPlatform, error) {
	root, err := decodeXMLPlist(b)
	if err != nil {
		return ioPlatform{}, fmt.Errorf("ioreg output: %w", err)
	}
	dev := findPlatformDevice(root, 0)
	if dev == nil {
		return ioPlatform{}, errors.New("ioreg output: no IOPlatformExpertDevice entry")
	}
	return ioPlatform{
		UUID:         dmiUUID(plistString(dev["IOPlatformUUID"])),
		Serial:       dmiString(plistString(dev["IOPlatformSerialNumber"])),
		Model:        dmiString(plistString(dev["model"])),
		Manufacturer: dmiString(plistString(dev["manufacturer"])),
	}, nil
}

// parseSystemVersion decodes SystemVersion.plist (an XML property list
// dictionary with ProductName, ProductVersion and ProductBuildVersion
// strings).
func parseSystemVersion(b []byte) (macOSVersion, error) {
	root, err := decodeXMLPlist(b)
	if err != nil {
		return macOSVersion{}, fmt.Errorf("SystemVersion.plist: %w", err)
	}
	d, ok := root.(map[string]any)
	if !ok {
		return macOSVersion{}, errors.New("SystemVersion.plist: top level is not a dictionary")
	}
	v := macOSVersion{
		Name:    plistString(d["ProductName"]),
		Version: plistString(d["ProductVersion"]),
		Build:   plistString(d["ProductBuildVersion"]),
	}
	if v == (macOSVersion{}) {
		return macOSVersion{}, errors.New("SystemVersion.plist: no ProductName, ProductVersion or ProductBuildVersion")
	}
	return v, nil
}

// decodeXMLPlist decodes an XML property list. Both inputs this package
// reads are XML, so the binary and OpenStep parsers are not reached with
// untrusted bytes.
func decodeXMLPlist(b []byte) (any, error) {
	trimmed := bytes.TrimLeft(b, " \t\r\n\ufeff")
	if !bytes.HasPrefix(trimmed, []byte("<")) {
		return nil, errors.New("not an XML property list")
	}
	var v any
	format, err := plist.Unmarshal(b, &v)
	if err != nil {
		return nil, fmt.Errorf("decode plist: %w", err)
	}
	if format != plist.XMLFormat {
		return nil, errors.New("not an XML property list")
	}
	return v, nil
}

func findPlatformDevice(v any, depth int) map[string]any {
	if depth > maxPlistDepth {
		return nil
	}
	switch v := v.(type) {
	case map[string]any:
		if _, ok := v["IOPlatformUUID"]; ok {
			return v
		}
		if _, ok := v["IOPlatformSerialNumber"]; ok {
			return v
		}
		if plistString(v["IOObjectClass"]) == "IOPlatformExpertDevice" {
			return v
		}
		return findPlatformDevice(v["IORegistryEntryChildren"], depth+1)
	case []any:
		for _, e := range v {
			if d := findPlatformDevice(e, depth+1); d != nil {
				return d
			}
		}
	}
	return nil
}

// plistString returns a plist string or data value as a cleaned string.
// IOKit stores device-tree properties such as "model" as data holding a
// NUL-terminated C string.
func plistString(v any) string {
	switch v := v.(type) {
	case string:
		return cString([]byte(v))
	case []byte:
		return cString(v)
	}
	return ""
}
