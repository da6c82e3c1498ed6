package usb

import (
	"sort"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// USB class codes (usb.org "Defined Class Codes").
const (
	ClassCDC           = 0x02
	ClassHID           = 0x03
	ClassMassStorage   = 0x08
	ClassHub           = 0x09
	ClassCDCData       = 0x0a
	ClassWireless      = 0xe0
	ClassMiscellaneous = 0xef
)

// IsNetworkInterface reports whether an interface is a USB network
// function: CDC ECM (02/06), CDC EEM (02/0c), CDC NCM (02/0d), RNDIS as
// Microsoft defines it (e0/01/03, or ef/04/01).
func IsNetworkInterface(i *agentv1.UsbInterface) bool {
	switch i.GetClass() {
	case ClassCDC:
		switch i.GetSubclass() {
		case 0x06, 0x0c, 0x0d:
			return true
		}
	case ClassWireless:
		return i.GetSubclass() == 0x01 && i.GetProtocol() == 0x03
	case ClassMiscellaneous:
		return i.GetSubclass() == 0x04 && i.GetProtocol() == 0x01
	}
	return false
}

// Finish completes a device an OS reader has filled in: it orders the
// interfaces by number, sets NetworkFunction from them and makes Hid
// non-nil.
func Finish(d *agentv1.UsbDevice) {
	sort.SliceStable(d.Interfaces, func(i, j int) bool { return d.Interfaces[i].GetNumber() < d.Interfaces[j].GetNumber() })
	for _, i := range d.Interfaces {
		if IsNetworkInterface(i) {
			d.NetworkFunction = true
		}
	}
	if d.Hid == nil {
		d.Hid = &agentv1.HidSummary{}
	}
}

// Sort orders devices by location, so that output is stable.
func Sort(devs []*agentv1.UsbDevice) {
	sort.SliceStable(devs, func(i, j int) bool { return devs[i].GetLocation() < devs[j].GetLocation() })
}
