package display

import "github.com/bonafide-sec/bonafide/agent/internal/setupdi"

// PresentMonitorIDs lists the instance ids of the present monitor device
// nodes (GUID_DEVCLASS_MONITOR), sorted: which monitors are connected (no
// EDID is read), which the runner's change fingerprint polls so that a
// monitor or an IP-KVM's HDMI plugged in is scanned within its watch
// interval. Nil when SetupAPI fails.
func PresentMonitorIDs() []string { return setupdi.PresentInstanceIDs(&winGUIDClassMonitor, "") }
