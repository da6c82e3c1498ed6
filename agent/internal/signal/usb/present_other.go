//go:build !windows

package usb

// PresentDeviceIDs is Windows's cheap list of present USB device nodes;
// Linux's change fingerprint reads /sys/bus/usb/devices instead, and macOS
// has none yet.
func PresentDeviceIDs() []string { return nil }
