package usb

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The real `ioreg -p IOUSB -l` node of an ESP32-C3 (testdata/mac/SOURCES.md).
func macPresentCapture(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "mac", "ioreg-p-IOUSB-l-esp32c3-fivebyfive.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMacPresentDevices(t *testing.T) {
	capture := macPresentCapture(t)
	const esp32 = "USB JTAG/serial debug unit@01114000|IOUSBHostDevice|0x10001c6b3"
	if got := MacPresentDevices([]byte(capture)); !slices.Equal(got, []string{esp32}) {
		t.Fatalf("got %q", got)
	}
	// The same device a run later: busy time, retain count and state
	// change by themselves; the list must not.
	later := strings.Replace(capture, "active, busy 0 (234 ms), retain 46>", "active, busy 1 (3 ms), retain 51>", 1)
	if later == capture {
		t.Fatal("the capture's node line changed shape")
	}
	if got := MacPresentDevices([]byte(later)); !slices.Equal(got, []string{esp32}) {
		t.Errorf("same device, later run: %q", got)
	}
	// Unplugged and plugged in again: a new registry entry id.
	replugged := strings.Replace(capture, "id 0x10001c6b3,", "id 0x10001c7f0,", 1)
	if got := MacPresentDevices([]byte(replugged)); slices.Equal(got, []string{esp32}) || len(got) != 1 {
		t.Errorf("re-plugged: %q", got)
	}
	// Without the node (the device unplugged): nothing.
	if got := MacPresentDevices([]byte("+-o Root  <class IORegistryEntry, id 0x100000100, retain 20>\n")); !slices.Equal(got, []string{"Root|IORegistryEntry|0x100000100"}) {
		t.Errorf("root only: %q", got)
	}
	if got := MacPresentDevices(nil); got != nil {
		t.Errorf("empty output: %q", got)
	}
	// A device whose name imitates ioreg's own part is still one entry.
	odd := "+-o evil  <class X, id 0x1>  <class IOUSBHostDevice, id 0x2, registered, retain 9>\n"
	if got := MacPresentDevices([]byte(odd)); !slices.Equal(got, []string{"evil  <class X, id 0x1>|IOUSBHostDevice|0x2"}) {
		t.Errorf("odd name: %q", got)
	}
}

func FuzzMacPresentDevices(f *testing.F) {
	f.Add([]byte(macPresentCapture(f)))
	f.Add([]byte("+-o a  <class b, id 0x1, retain 2>\n+-o c  <class"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := MacPresentDevices(data)
		if len(got) > macMaxPresent {
			t.Fatalf("%d devices", len(got))
		}
		if !slices.IsSorted(got) {
			t.Fatal("not sorted")
		}
	})
}
