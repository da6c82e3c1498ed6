package remoteaccess

import (
	"strconv"
	"strings"

	"golang.org/x/sys/windows/registry"
)

// clientIDRegistry reads a client_id registry value: an HKLM key ("HKLM\…",
// opened in the 64-bit view, so that a WOW6432Node path names the 32-bit
// one explicitly) and a REG_DWORD or REG_QWORD value (TeamViewer's
// ClientID), given in decimal, or a REG_SZ value. Anything else, or a
// missing key or value, gives "".
func clientIDRegistry(key, value string) string {
	sub, ok := strings.CutPrefix(key, `HKLM\`)
	if !ok || sub == "" {
		return ""
	}
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, sub, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if err != nil {
		return ""
	}
	defer k.Close()
	if n, _, err := k.GetIntegerValue(value); err == nil {
		return strconv.FormatUint(n, 10)
	}
	if s, _, err := k.GetStringValue(value); err == nil && len(s) <= clientIDMaxLen {
		return s
	}
	return ""
}
