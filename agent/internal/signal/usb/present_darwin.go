package usb

import (
	"context"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/cmdx"
)

// presentTimeout and presentMaxBytes bound one ioreg run of the change
// fingerprint: the USB plane without properties is a few KiB.
const (
	presentTimeout  = 5 * time.Second
	presentMaxBytes = 1 << 20
)

// PresentDeviceIDs lists the USB plane's device nodes (name, class and
// registry entry id, which is new at each plug-in), sorted, which the
// runner's change fingerprint polls so that a KVM plugged in is scanned
// within its watch interval. Nil when ioreg fails.
func PresentDeviceIDs() []string {
	out, err := cmdx.Run(context.Background(), presentTimeout, presentMaxBytes, "/usr/sbin/ioreg", "-p", "IOUSB", "-w0")
	if err != nil {
		return nil
	}
	return MacPresentDevices(out)
}
