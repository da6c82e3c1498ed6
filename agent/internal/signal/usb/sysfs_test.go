package usb

import (
	"testing"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// An excerpt in the format drivers/input/input.c prints: a USB keyboard, an
// absolute mouse (IP-KVM style), a touch screen and a non-USB touchpad.
const inputLog = `I: Bus=0003 Vendor=1d6b Product=0104 Version=0100
N: Name="PiKVM Keyboard"
P: Phys=usb-0000:00:14.0-2/input0
S: Sysfs=/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/0003:1D6B:0104.0001/input/input5
U: Uniq=CAFEBABE
H: Handlers=sysrq kbd event5 leds
B: PROP=0
B: EV=120013
B: KEY=1000000000007 ff9f207ac14057ff febeffdfffefffff fffffffffffffffe
B: MSC=10
B: LED=1f

I: Bus=0003 Vendor=1d6b Product=0104 Version=0100
N: Name="PiKVM Mouse"
S: Sysfs=/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.1/0003:1D6B:0104.0002/input/input6
H: Handlers=mouse1 event6
B: EV=1b
B: KEY=1f0000 0 0 0 0
B: ABS=3
B: MSC=10

I: Bus=0003 Vendor=04f3 Product=2234 Version=0110
N: Name="ELAN Touchscreen"
S: Sysfs=/devices/pci0000:00/0000:00:14.0/usb1/1-7/1-7:1.0/0003:04F3:2234.0003/input/input7
H: Handlers=mouse2 event7
B: EV=1b
B: KEY=400 0 0 0 0 0
B: ABS=3273800000000003

I: Bus=0018 Vendor=06cb Product=ce7e Version=0100
N: Name="SYNA Touchpad"
S: Sysfs=/devices/platform/AMDI0010:01/i2c-1/i2c-SYNA/0018:06CB:CE7E.0004/input/input8
H: Handlers=mouse3 event8
B: EV=1b
B: KEY=e520 10000 0 0 0 0
B: ABS=2e0800000000003
`

func TestParseInputLog(t *testing.T) {
	devs := parseInputLog([]byte(inputLog))
	if len(devs) != 4 {
		t.Fatalf("%d devices", len(devs))
	}
	want := []struct {
		usb string
		sum *agentv1.HidSummary
	}{
		{"1-2", &agentv1.HidSummary{Keyboard: true}},
		{"1-2", &agentv1.HidSummary{AbsolutePointer: true}},
		{"1-7", &agentv1.HidSummary{Digitizer: true}},
		{"", &agentv1.HidSummary{Digitizer: true}}, // I2C, not USB
	}
	for i, w := range want {
		s := &agentv1.HidSummary{}
		devs[i].addTo(s)
		if devs[i].usbDevice() != w.usb || s.Keyboard != w.sum.Keyboard || s.RelativeMouse != w.sum.RelativeMouse ||
			s.AbsolutePointer != w.sum.AbsolutePointer || s.Digitizer != w.sum.Digitizer {
			t.Errorf("device %d: usb %q summary %v, want %q %v", i, devs[i].usbDevice(), s, w.usb, w.sum)
		}
	}
}

func FuzzParseInputLog(f *testing.F) {
	f.Add([]byte(inputLog))
	f.Add([]byte("B: KEY=" + "ffffffffffffffff "))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, d := range parseInputLog(b) {
			d.addTo(&agentv1.HidSummary{})
			d.usbDevice()
		}
	})
}
