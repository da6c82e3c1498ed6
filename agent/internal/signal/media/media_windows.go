//go:build windows

package media

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/sys/windows/registry"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// readLive walks the registry keys of win.go (winRoots) to their depth,
// reading only the value names of winValueNames, into the same RegKey
// shape that ParseRegQuery gives tests, and leaves the picking to
// WinDevices. A missing key means no such devices.
func readLive(ctx context.Context) ([]*agentv1.MediaDevice, error) {
	var keys []RegKey
	for _, r := range winRoots {
		rel := strings.TrimPrefix(r.Key, `HKEY_LOCAL_MACHINE\`)
		walkKey(ctx, rel, r.Depth, &keys)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	return WinDevices(keys), nil
}

// walkKey reads key's values and its subkeys' down to depth levels.
func walkKey(ctx context.Context, rel string, depth int, keys *[]RegKey) {
	if ctx.Err() != nil || len(*keys) >= maxRegKeys {
		return
	}
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, rel, registry.QUERY_VALUE|registry.ENUMERATE_SUB_KEYS)
	if err != nil {
		return
	}
	defer k.Close()
	rk := RegKey{Path: `HKEY_LOCAL_MACHINE\` + rel, Values: map[string]RegValue{}}
	for _, name := range winValueNames {
		if s, _, err := k.GetStringValue(name); err == nil {
			rk.Values[name] = RegValue{Type: "REG_SZ", Data: s}
		} else if n, _, err := k.GetIntegerValue(name); err == nil {
			rk.Values[name] = RegValue{Type: "REG_DWORD", Data: fmt.Sprintf("0x%x", n)}
		}
	}
	*keys = append(*keys, rk)
	if depth == 0 {
		return
	}
	subs, err := k.ReadSubKeyNames(maxEntries)
	if err != nil && len(subs) == 0 {
		return
	}
	for _, s := range subs {
		walkKey(ctx, rel+`\`+s, depth-1, keys)
	}
}

// winRoots are the keys the live reader walks, with how deep.
var winRoots = []struct {
	Key   string
	Depth int
}{
	{WinDirectShowVideoKey, 1}, {WinDirectShowVideoKey32, 1}, {WinVirtualCameraKey, 1}, {WinAudioCaptureKey, 2},
}

// winValueNames are the values the live reader reads (names only ever).
var winValueNames = []string{"FriendlyName", "DeviceDesc", "DeviceState", winPKeyFriendlyName, winPKeyDeviceDesc, winPKeyAdapterName, winPKeyInterfaceFriendlyName}
