package setupdi

import (
	"errors"
	"sort"

	"golang.org/x/sys/windows"
)

// PresentInstanceIDs lists the instance ids of the present device nodes
// of a device class (nil: every class) and an enumerator ("": any),
// sorted: a cheap view of what is plugged in (no property is read and no
// device opened). Nil when SetupAPI fails.
func PresentInstanceIDs(class *windows.GUID, enumerator string) []string {
	flags := windows.DIGCF_PRESENT
	if class == nil {
		flags |= windows.DIGCF_ALLCLASSES
	}
	set, err := windows.SetupDiGetClassDevsEx(class, enumerator, 0, flags, 0, "")
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
