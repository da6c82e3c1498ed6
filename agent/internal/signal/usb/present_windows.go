package usb

import "github.com/bonafide-sec/bonafide/agent/internal/setupdi"

// PresentDeviceIDs lists the instance ids of the present device nodes of
// the USB enumerator, sorted, which the runner's change fingerprint polls
// so that a KVM plugged in is scanned within its watch interval. Nil when
// SetupAPI fails.
func PresentDeviceIDs() []string { return setupdi.PresentInstanceIDs(nil, "USB") }
