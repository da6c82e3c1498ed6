package main

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/bonafide-sec/bonafide/agent/internal/scan"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
	"google.golang.org/protobuf/encoding/protojson"
)

// The device nodes a PiKVM (v4 Plus, kvmd's defaults: shared/threat-signals
// §2.2) leaves on a Windows laptop, as SetupAPI keeps them under
// HKLM\SYSTEM\CurrentControlSet\Enum: the composite USB gadget 1d6b:0104
// with serial CAFEBABE, its boot-keyboard interface, its virtual CD-ROM
// (SCSI inquiry "PiKVM" / "Optical Drive") and the monitor whose EDID the
// HDMI capture bridge serves.
const (
	pikvmUSB     = `USB\VID_1D6B&PID_0104\CAFEBABE`
	pikvmKbd     = `USB\VID_1D6B&PID_0104&MI_00\6&2B3F4A5C&0&0000`
	pikvmCDROM   = `USBSTOR\CdRom&Ven_PiKVM&Prod_Optical_Drive&Rev_1.00\CAFEBABE&0`
	pikvmMonitor = `DISPLAY\LNX7773\5&2A1B3C4D&0&UID4353`
	// pikvmEDID is the EDID of kvmd's configs/kvmd/edid for the V4 Plus,
	// rebuilt from its decoded fields (display's TestFixtures).
	pikvmEDID = "internal/signal/display/testdata/edid/pikvm_v4plus.bin"

	enumKey = `SYSTEM\CurrentControlSet\Enum\`
	// Setup classes (devguid.h): USB (the device and its interface), CD-ROM
	// and Monitor.
	classUSB     = "{36fc9e60-c465-11cf-8056-444553540000}"
	classCDROM   = "{4d36e965-e325-11ce-bfc1-08002be10318}"
	classMonitor = "{4d36e96e-e325-11ce-bfc1-08002be10318}"
	// DEVPKEY_Device_BusReportedDeviceDesc (devpkey.h).
	keyBusReportedDeviceDesc = `Properties\{540b947e-8b40-45bc-a8a2-6a0b894cbda2}\0004`
)

// TestScanFindsPiKVMUnderWine: with a PiKVM's device nodes written into
// Wine's registry where SetupAPI keeps them (Enum\USB, Enum\USBSTOR,
// Enum\DISPLAY\…\Device Parameters\EDID), scan --json reports the USB
// gadget (VID/PID, serial, product, keyboard interface, CD-ROM) and the
// monitor (LNX 0x7773 "PiKVM V4 Plus", serial CAFEBABE), the KVM
// catalog names both pikvm, and the change fingerprint the runner polls
// changed when they appeared. Wine's SetupAPI lists registry-only device
// nodes as present, which real Windows does not, so it runs only under
// Wine (make test-windows gives it a prefix of its own) and removes the
// keys when it ends.
func TestScanFindsPiKVMUnderWine(t *testing.T) {
	if !underWine() {
		t.Skip("writes device nodes into HKLM\\SYSTEM\\CurrentControlSet\\Enum: runs only under Wine (make test-windows)")
	}
	edid, err := os.ReadFile(pikvmEDID)
	if err != nil {
		t.Fatal(err)
	}
	// The change fingerprint the runner polls every 15 s.
	sc := &scan.Scanner{Root: "/"}
	before := sc.Fingerprint()
	node := func(id string, multi map[string][]string, strs map[string]string) registry.Key {
		t.Helper()
		k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, enumKey+id, registry.ALL_ACCESS|registry.WOW64_64KEY)
		if err != nil {
			t.Fatalf("HKLM\\%s%s: %v", enumKey, id, err)
		}
		t.Cleanup(func() { deleteTree(t, id) })
		for n, v := range multi {
			if err := k.SetStringsValue(n, v); err != nil {
				t.Fatal(err)
			}
		}
		for n, v := range strs {
			if err := k.SetStringValue(n, v); err != nil {
				t.Fatal(err)
			}
		}
		return k
	}
	usb := node(pikvmUSB, map[string][]string{
		"HardwareID":    {`USB\VID_1D6B&PID_0104&REV_0100`, `USB\VID_1D6B&PID_0104`},
		"CompatibleIDs": {`USB\DevClass_00&SubClass_00&Prot_00`, `USB\DevClass_00&SubClass_00`, `USB\DevClass_00`, `USB\COMPOSITE`},
	}, map[string]string{"ClassGUID": classUSB, "Service": "usbccgp", "LocationInformation": "Port_#0003.Hub_#0001"})
	setDeviceString(t, usb, keyBusReportedDeviceDesc, "PiKVM Composite Device")
	usb.Close()
	node(pikvmKbd, map[string][]string{
		"HardwareID":    {`USB\VID_1D6B&PID_0104&REV_0100&MI_00`, `USB\VID_1D6B&PID_0104&MI_00`},
		"CompatibleIDs": {`USB\Class_03&SubClass_01&Prot_01`, `USB\Class_03&SubClass_01`, `USB\Class_03`},
	}, map[string]string{"ClassGUID": classUSB, "Service": "HidUsb"}).Close()
	node(pikvmCDROM, map[string][]string{
		"HardwareID": {`USBSTOR\CdRomPiKVM___Optical_Drive___1.00`, `USBSTOR\GenCdRom`, `GenCdRom`},
	}, map[string]string{"ClassGUID": classCDROM, "Service": "cdrom"}).Close()
	node(pikvmMonitor, map[string][]string{"HardwareID": {`MONITOR\LNX7773`}},
		map[string]string{"ClassGUID": classMonitor, "Service": "monitor"}).Close()
	params := node(pikvmMonitor+`\Device Parameters`, nil, nil)
	if err := params.SetBinaryValue("EDID", edid); err != nil {
		t.Fatal(err)
	}
	params.Close()

	// Plugging the KVM in changes it, so the agent scans at once.
	if sc.Fingerprint() == before {
		t.Errorf("the change fingerprint did not change with the PiKVM's USB and monitor nodes")
	}

	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"scan", "--json"}, &out, &errOut); err != nil {
		t.Fatalf("scan --json: %v: %s", err, errOut.String())
	}
	var sn agentv1.HostSnapshot
	if err := protojson.Unmarshal(out.Bytes(), &sn); err != nil {
		t.Fatal(err)
	}
	// Instance ids come back upper-cased (as on Windows), so the CD-ROM's
	// inquiry strings, read from its instance id, do too.
	i := slices.IndexFunc(sn.GetUsb().GetDevices(), func(d *agentv1.UsbDevice) bool {
		return d.GetVendorId() == 0x1d6b && d.GetProductId() == 0x0104
	})
	if i < 0 {
		t.Fatalf("no USB device 1d6b:0104: %s", protojson.Format(sn.GetUsb()))
	}
	dev := sn.GetUsb().GetDevices()[i]
	t.Logf("USB: %s", protojson.Format(dev))
	for what, ok := range map[string]bool{
		"serial CAFEBABE":               dev.GetSerial() == "CAFEBABE",
		"bcdDevice 0x0100":              dev.GetBcdDevice() == 0x0100,
		"location Port_#0003.Hub_#0001": dev.GetLocation() == "Port_#0003.Hub_#0001",
		"boot keyboard interface 3/1/1": slices.ContainsFunc(dev.GetInterfaces(), func(f *agentv1.UsbInterface) bool {
			return f.GetClass() == 3 && f.GetSubclass() == 1 && f.GetProtocol() == 1
		}),
		"CD-ROM PiKVM Optical Drive":       dev.GetMassStorage().GetCdrom() && strings.EqualFold(dev.GetMassStorage().GetVendor(), "PiKVM") && strings.EqualFold(dev.GetMassStorage().GetProduct(), "Optical Drive"),
		"product PiKVM Composite Device":   dev.GetProduct() == "PiKVM Composite Device",
		"a pikvm finding for this device":  hasFinding(&sn, "usb", dev.GetLocation(), "pikvm"),
		"USB signal ok, no error recorded": signalOK(&sn, "usb"),
	} {
		if !ok {
			t.Errorf("USB device 1d6b:0104: no %s", what)
		}
	}

	j := slices.IndexFunc(sn.GetDisplays().GetDisplays(), func(d *agentv1.Display) bool { return d.GetManufacturerId() == "LNX" })
	if j < 0 {
		t.Fatalf("no LNX display: %s", protojson.Format(sn.GetDisplays()))
	}
	disp := sn.GetDisplays().GetDisplays()[j]
	t.Logf("display: %s", protojson.Format(disp))
	for what, ok := range map[string]bool{
		"product 0x7773":                    disp.GetProductCode() == 0x7773,
		"name PiKVM V4 Plus":                disp.GetMonitorName() == "PiKVM V4 Plus",
		"serial CAFEBABE":                   disp.GetSerialString() == "CAFEBABE",
		"connector " + pikvmMonitor:         strings.EqualFold(disp.GetConnector(), pikvmMonitor),
		"a pikvm finding for this display":  hasFinding(&sn, "display", disp.GetConnector(), "pikvm"),
		"display signal ok, no error found": signalOK(&sn, "display"),
	} {
		if !ok {
			t.Errorf("display LNX: no %s", what)
		}
	}
	if t.Failed() {
		t.Logf("peripherals: %s", protojson.Format(sn.GetPeripherals()))
	}
}

func hasFinding(sn *agentv1.HostSnapshot, source, device, family string) bool {
	return slices.ContainsFunc(sn.GetPeripherals().GetFindings(), func(f *agentv1.PeripheralFinding) bool {
		return f.GetSource() == source && f.GetDevice() == device && f.GetFamily() == family
	})
}

func signalOK(sn *agentv1.HostSnapshot, name string) bool {
	return slices.ContainsFunc(sn.GetSignals(), func(s *agentv1.SignalStatus) bool {
		return s.GetName() == name && s.GetState() == agentv1.SignalStatus_STATE_OK
	})
}

// setDeviceString writes a string device property the way Wine's SetupAPI
// keeps it (SetupDiSetDevicePropertyW): the default value of the
// device's Properties\{fmtid}\pid key, whose registry type carries the
// DEVPROPTYPE (0xffff0000 | DEVPROP_TYPE_STRING). Where Windows keeps
// device properties is not documented and not read here.
func setDeviceString(t *testing.T, dev registry.Key, path, value string) {
	t.Helper()
	k, _, err := registry.CreateKey(dev, path, registry.SET_VALUE)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	data, err := windows.UTF16FromString(value)
	if err != nil {
		t.Fatal(err)
	}
	const devpropTypeString = 0x12
	set := windows.NewLazySystemDLL("advapi32.dll").NewProc("RegSetValueExW")
	if rc, _, _ := set.Call(uintptr(k), 0, 0, 0xffff0000|devpropTypeString,
		uintptr(unsafe.Pointer(&data[0])), uintptr(len(data)*2)); rc != 0 {
		t.Fatalf("RegSetValueExW %s: %v", path, windows.Errno(rc))
	}
}

// deleteTree deletes HKLM\…\Enum\id and its subkeys, if still there.
func deleteTree(t *testing.T, id string) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, enumKey+id, registry.ENUMERATE_SUB_KEYS|registry.WOW64_64KEY)
	if err != nil {
		return
	}
	subs, _ := k.ReadSubKeyNames(-1)
	k.Close()
	for _, s := range subs {
		deleteTree(t, id+`\`+s)
	}
	if err := registry.DeleteKey(registry.LOCAL_MACHINE, enumKey+id); err != nil {
		t.Logf("delete HKLM\\%s%s: %v", enumKey, id, err)
	}
	// The device id's key (Enum\USB\VID_…), once no instance is left
	// under it: deleting a key that still has subkeys fails.
	if i := strings.LastIndex(id, `\`); strings.Count(id, `\`) == 2 {
		_ = registry.DeleteKey(registry.LOCAL_MACHINE, enumKey+id[:i])
	}
}
