package usb

// The Windows reader. It asks SetupAPI for the present device nodes of the
// USB, USBSTOR, SCSI and HID enumerators, reads their identifiers and a few
// properties, opens each HID top-level collection with zero access to read
// its capabilities (never its reports), and leaves all parsing and grouping
// to the pure functions of win_ids.go and win_build.go.
//
// Not read: the manufacturer and configuration string descriptors and the
// speed, which Windows keeps only in the hub driver (they need
// IOCTL_USB_GET_NODE_CONNECTION_INFORMATION_EX and
// IOCTL_USB_GET_DESCRIPTOR_FROM_NODE_CONNECTION on the parent hub).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

var (
	// DEVPKEY_Device_BusReportedDeviceDesc (devpkey.h): the product string
	// descriptor as the bus driver reported it.
	winKeyBusReportedDeviceDesc = windows.DEVPROPKEY{
		FmtID: windows.DEVPROPGUID{Data1: 0x540b947e, Data2: 0x8b40, Data3: 0x45bc, Data4: [8]byte{0xa8, 0xa2, 0x6a, 0x0b, 0x89, 0x4c, 0xbd, 0xa2}},
		PID:   4,
	}
	// DEVPKEY_Device_Parent (devpkey.h): the parent's instance id.
	winKeyParent = windows.DEVPROPKEY{
		FmtID: windows.DEVPROPGUID{Data1: 0x4340a6c5, Data2: 0x93fa, Data3: 0x4706, Data4: [8]byte{0x97, 0x2c, 0x7b, 0x64, 0x80, 0x08, 0xa5, 0xa7}},
		PID:   8,
	}
	// GUID_DEVINTERFACE_HID (hidclass.h).
	winGUIDInterfaceHID = windows.GUID{Data1: 0x4d1e55b2, Data2: 0xf16f, Data3: 0x11cf, Data4: [8]byte{0x88, 0xcb, 0x00, 0x11, 0x11, 0x00, 0x00, 0x30}}

	winHidDLL                       = windows.NewLazySystemDLL("hid.dll")
	winProcHidDGetPreparsed         = winHidDLL.NewProc("HidD_GetPreparsedData")
	winProcHidDFreePreparsed        = winHidDLL.NewProc("HidD_FreePreparsedData")
	winProcHidPGetCaps              = winHidDLL.NewProc("HidP_GetCaps")
	winProcHidPGetValueCaps         = winHidDLL.NewProc("HidP_GetValueCaps")
	winErrNoHIDCaps                 = errors.New("hid: no capabilities")
	winMaxValueCaps          uint16 = 4096
)

// winHIDStatusSuccess is HIDP_STATUS_SUCCESS (hidpi.h).
const winHIDStatusSuccess = 0x00110000

// winHIDPCaps mirrors HIDP_CAPS (hidpi.h): 64 bytes of USHORTs.
type winHIDPCaps struct {
	Usage                     uint16
	UsagePage                 uint16
	InputReportByteLength     uint16
	OutputReportByteLength    uint16
	FeatureReportByteLength   uint16
	Reserved                  [17]uint16
	NumberLinkCollectionNodes uint16
	NumberInputButtonCaps     uint16
	NumberInputValueCaps      uint16
	NumberInputDataIndices    uint16
	NumberOutputButtonCaps    uint16
	NumberOutputValueCaps     uint16
	NumberOutputDataIndices   uint16
	NumberFeatureButtonCaps   uint16
	NumberFeatureValueCaps    uint16
	NumberFeatureDataIndices  uint16
}

// winHIDPValueCaps mirrors HIDP_VALUE_CAPS (hidpi.h), 72 bytes. The final
// union is Range {UsageMin, UsageMax, …} or NotRange {Usage, Reserved1, …}.
type winHIDPValueCaps struct {
	UsagePage         uint16
	ReportID          uint8
	IsAlias           uint8
	BitField          uint16
	LinkCollection    uint16
	LinkUsage         uint16
	LinkUsagePage     uint16
	IsRange           uint8
	IsStringRange     uint8
	IsDesignatorRange uint8
	IsAbsolute        uint8
	HasNull           uint8
	Reserved          uint8
	BitSize           uint16
	ReportCount       uint16
	Reserved2         [5]uint16
	UnitsExp          uint32
	Units             uint32
	LogicalMin        int32
	LogicalMax        int32
	PhysicalMin       int32
	PhysicalMax       int32
	UsageMin          uint16 // NotRange.Usage when IsRange == 0
	UsageMax          uint16
	rest              [6]uint16
}

func init() {
	// The layouts above must match the C structures.
	if unsafe.Sizeof(winHIDPCaps{}) != 64 || unsafe.Sizeof(winHIDPValueCaps{}) != 72 {
		panic("usb: HIDP structure layout mismatch")
	}
}

func readLive(ctx context.Context) (*agentv1.Usb, error) {
	recs, err := winEnumerate("USB")
	if err != nil {
		return nil, fmt.Errorf("usb: setupapi: %w", err)
	}
	for _, enum := range []string{"USBSTOR", "SCSI"} {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		more, err := winEnumerate(enum)
		if err == nil {
			recs = append(recs, more...)
		}
	}
	var hids []winHIDCollection
	if hidRecs, err := winEnumerate("HID"); err == nil {
		for _, r := range hidRecs {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			// Only HID collections of USB devices are of interest.
			if !strings.HasPrefix(strings.ToUpper(r.Parent), `USB\`) {
				continue
			}
			c, err := winReadHIDCaps(r.InstanceID)
			if err != nil {
				continue
			}
			c.Parent = r.Parent
			hids = append(hids, c)
		}
	}
	return &agentv1.Usb{Devices: winBuild(recs, hids)}, nil
}

// winEnumerate lists the present device nodes of one enumerator.
func winEnumerate(enumerator string) ([]winPnPRecord, error) {
	set, err := windows.SetupDiGetClassDevsEx(nil, enumerator, 0, windows.DIGCF_ALLCLASSES|windows.DIGCF_PRESENT, 0, "")
	if err != nil {
		return nil, err
	}
	defer set.Close()
	var out []winPnPRecord
	for i := 0; ; i++ {
		data, err := set.EnumDeviceInfo(i)
		if err != nil {
			if errors.Is(err, windows.ERROR_NO_MORE_ITEMS) {
				break
			}
			continue
		}
		id, err := set.DeviceInstanceID(data)
		if err != nil || id == "" {
			continue
		}
		r := winPnPRecord{
			InstanceID:    id,
			HardwareIDs:   winRegStrings(set, data, windows.SPDRP_HARDWAREID),
			CompatibleIDs: winRegStrings(set, data, windows.SPDRP_COMPATIBLEIDS),
			Service:       winRegString(set, data, windows.SPDRP_SERVICE),
			BusDesc:       winPropString(set, data, &winKeyBusReportedDeviceDesc),
			Parent:        winPropString(set, data, &winKeyParent),
		}
		if paths := winRegStrings(set, data, windows.SPDRP_LOCATION_PATHS); len(paths) > 0 {
			r.Location = paths[0]
		} else {
			r.Location = winRegString(set, data, windows.SPDRP_LOCATION_INFORMATION)
		}
		out = append(out, r)
	}
	return out, nil
}

// winRegProp reads a SetupAPI registry property, turning any failure
// (including a panic on an empty buffer inside x/sys) into nil.
func winRegProp(set windows.DevInfo, data *windows.DevInfoData, p windows.SPDRP) (v any) {
	defer func() {
		if recover() != nil {
			v = nil
		}
	}()
	v, err := set.DeviceRegistryProperty(data, p)
	if err != nil {
		return nil
	}
	return v
}

func winRegStrings(set windows.DevInfo, data *windows.DevInfoData, p windows.SPDRP) []string {
	switch v := winRegProp(set, data, p).(type) {
	case []string:
		return v
	case string:
		if v != "" {
			return []string{v}
		}
	}
	return nil
}

func winRegString(set windows.DevInfo, data *windows.DevInfoData, p windows.SPDRP) string {
	if s := winRegStrings(set, data, p); len(s) > 0 {
		return s[0]
	}
	return ""
}

func winPropString(set windows.DevInfo, data *windows.DevInfoData, key *windows.DEVPROPKEY) (s string) {
	defer func() {
		if recover() != nil {
			s = ""
		}
	}()
	v, err := windows.SetupDiGetDeviceProperty(set, data, key)
	if err != nil {
		return ""
	}
	s, _ = v.(string)
	return s
}

// winReadHIDCaps opens the HID device interface of one top-level
// collection with zero access (enough for the preparsed data, and allowed
// on keyboards and mice that the system opens exclusively) and reads its
// top-level usage and its input value capabilities.
func winReadHIDCaps(instanceID string) (winHIDCollection, error) {
	c := winHIDCollection{InstanceID: instanceID}
	if err := winHidDLL.Load(); err != nil {
		return c, err
	}
	paths, err := windows.CM_Get_Device_Interface_List(instanceID, &winGUIDInterfaceHID, windows.CM_GET_DEVICE_INTERFACE_LIST_PRESENT)
	if err != nil || len(paths) == 0 {
		return c, winErrNoHIDCaps
	}
	p, err := windows.UTF16PtrFromString(paths[0])
	if err != nil {
		return c, err
	}
	h, err := windows.CreateFile(p, 0, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, nil, windows.OPEN_EXISTING, 0, 0)
	if err != nil {
		return c, err
	}
	defer windows.CloseHandle(h)

	var pre uintptr
	if ok, _, _ := winProcHidDGetPreparsed.Call(uintptr(h), uintptr(unsafe.Pointer(&pre))); ok&0xff == 0 || pre == 0 {
		return c, winErrNoHIDCaps
	}
	defer winProcHidDFreePreparsed.Call(pre)

	var caps winHIDPCaps
	if st, _, _ := winProcHidPGetCaps.Call(pre, uintptr(unsafe.Pointer(&caps))); uint32(st) != winHIDStatusSuccess {
		return c, winErrNoHIDCaps
	}
	c.UsagePage, c.Usage = caps.UsagePage, caps.Usage
	n := min(caps.NumberInputValueCaps, winMaxValueCaps)
	if n == 0 {
		return c, nil
	}
	vcs := make([]winHIDPValueCaps, n)
	length := n
	const hidPInput = 0
	if st, _, _ := winProcHidPGetValueCaps.Call(hidPInput, uintptr(unsafe.Pointer(&vcs[0])), uintptr(unsafe.Pointer(&length)), pre); uint32(st) != winHIDStatusSuccess {
		return c, nil
	}
	for _, v := range vcs[:min(length, n)] {
		vc := winHIDValueCap{UsagePage: v.UsagePage, UsageMin: v.UsageMin, UsageMax: v.UsageMax, Absolute: v.IsAbsolute != 0}
		if v.IsRange == 0 {
			vc.UsageMax = vc.UsageMin
		}
		c.Values = append(c.Values, vc)
	}
	return c, nil
}
