package display

import (
	"errors"
	"sort"

	"golang.org/x/sys/windows"
)

// PresentMonitorIDs lists the instance ids of the present monitor device
// nodes (GUID_DEVCLASS_MONITOR), sorted: a cheap view of which monitors
// are connected (no EDID is read), which the runner's change fingerprint
// polls so that a monitor or an IP-KVM's HDMI plugged in is scanned within
// its watch interval. Nil when SetupAPI fails.
func PresentMonitorIDs() []string {
	set, err := windows.SetupDiGetClassDevsEx(&winGUIDClassMonitor, "", 0, windows.DIGCF_PRESENT, 0, "")
	if err != nil {
		return nil
	}
	defer set.Close()
	var ids []string
	for i := 0; ; i++ {
		data, err := set.EnumDeviceInfo(i)
		if errors.Is(err, windows.ERROR_NO_MORE_ITEMS) {
			break
		}
		if err != nil {
			continue
		}
		if id, err := set.DeviceInstanceID(data); err == nil {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}
