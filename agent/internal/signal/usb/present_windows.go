package usb

import (
	"errors"
	"sort"

	"golang.org/x/sys/windows"
)

// PresentDeviceIDs lists the instance ids of the present device nodes of
// the USB enumerator, sorted: a cheap view of what is plugged in (no
// property is read and no device opened), which the runner's change
// fingerprint polls so that a KVM plugged in is scanned within its watch
// interval. Nil when SetupAPI fails.
func PresentDeviceIDs() []string {
	set, err := windows.SetupDiGetClassDevsEx(nil, "USB", 0, windows.DIGCF_ALLCLASSES|windows.DIGCF_PRESENT, 0, "")
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
