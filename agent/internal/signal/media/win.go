package media

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Registry locations read on Windows. The reader reads them live with the
// registry API; tests read `reg query KEY /s` output of the same keys
// (ParseRegQuery), so both go through WinDevices.
const (
	// WinDirectShowVideoKey lists the DirectShow video input devices
	// (CLSID_VideoInputDeviceCategory): each subkey a filter with its
	// FriendlyName. Virtual cameras register here; real webcams are
	// enumerated by the kernel-streaming proxy and are not listed.
	WinDirectShowVideoKey = `HKEY_LOCAL_MACHINE\SOFTWARE\Classes\CLSID\{860BB310-5D01-11d0-BD3B-00A0C911CE86}\Instance`
	// WinDirectShowVideoKey32 is the same for 32-bit filters.
	WinDirectShowVideoKey32 = `HKEY_LOCAL_MACHINE\SOFTWARE\WOW6432Node\Classes\CLSID\{860BB310-5D01-11d0-BD3B-00A0C911CE86}\Instance`
	// WinVirtualCameraKey holds the software devices that Media Foundation
	// creates for virtual cameras (MFCreateVirtualCamera, Windows 11): the
	// SWD\VCAMDEVAPI enumerator, each instance with its FriendlyName.
	WinVirtualCameraKey = `HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Enum\SWD\VCAMDEVAPI`
	// WinAudioCaptureKey lists the audio capture endpoints; each endpoint's
	// Properties subkey holds its names and DeviceState its state.
	WinAudioCaptureKey = `HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\MMDevices\Audio\Capture`
)

// Property keys of an audio endpoint as the Properties subkey names them
// (functiondiscoverykeys_devpkey.h): PKEY_Device_FriendlyName ("Microphone
// (Voicemod Virtual Audio Device (WDM))", when stored), PKEY_Device_DeviceDesc
// ("Microphone"), and the adapter's name ("Voicemod Virtual Audio Device
// (WDM)"), which the audio service stores under {b3f8fa53-…},6 and
// PKEY_DeviceInterface_FriendlyName.
const (
	winPKeyFriendlyName          = "{a45c254e-df1c-4efd-8020-67d146a850e0},14"
	winPKeyDeviceDesc            = "{a45c254e-df1c-4efd-8020-67d146a850e0},2"
	winPKeyAdapterName           = "{b3f8fa53-0004-438e-9003-51a46e139bfc},6"
	winPKeyInterfaceFriendlyName = "{026e516e-b814-414b-83cd-856d6fef4822},2"
)

// winDeviceStateActive is DEVICE_STATE_ACTIVE (mmdeviceapi.h).
const winDeviceStateActive = 1

// RegKey is one registry key and its values, as text: REG_SZ and
// REG_EXPAND_SZ as written, REG_DWORD as "0x…", others as reg.exe prints
// them.
type RegKey struct {
	Path   string
	Values map[string]RegValue
}

// RegValue is one value of a key.
type RegValue struct {
	Type string
	Data string
}

// maxRegKeys bounds the keys read from one `reg query` output or one live
// walk.
const maxRegKeys = 8192

// ParseRegQuery parses the output of `reg query KEY /s`: a key path on a
// line of its own, then its values indented, "    Name    REG_TYPE    Data",
// with a blank line between keys. The default value is named
// "(Default)". Lines it does not understand are skipped.
func ParseRegQuery(b []byte) []RegKey {
	var out []RegKey
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 256*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.HasPrefix(line, "HKEY_"):
			if len(out) == maxRegKeys {
				return out
			}
			out = append(out, RegKey{Path: line, Values: map[string]RegValue{}})
		case strings.HasPrefix(line, "    ") && len(out) > 0:
			name, typ, data, ok := splitRegValue(strings.TrimPrefix(line, "    "))
			if ok && len(out[len(out)-1].Values) < 1024 {
				out[len(out)-1].Values[name] = RegValue{Type: typ, Data: data}
			}
		}
	}
	return out
}

// splitRegValue splits "Name    REG_SZ    Data": the type is the first
// field that starts with REG_ and is set off by four spaces (names may
// contain spaces, data too).
func splitRegValue(s string) (name, typ, data string, ok bool) {
	parts := strings.Split(s, "    ")
	for i := 1; i < len(parts); i++ {
		if strings.HasPrefix(parts[i], "REG_") {
			return strings.Join(parts[:i], "    "), parts[i], strings.Join(parts[i+1:], "    "), true
		}
	}
	return "", "", "", false
}

// under reports whether key is a descendant of parent at depth levels
// below it (case-insensitive, as the registry is).
func under(key, parent string, depth int) bool {
	if len(key) <= len(parent)+1 || !strings.EqualFold(key[:len(parent)], parent) || key[len(parent)] != '\\' {
		return false
	}
	return strings.Count(key[len(parent)+1:], `\`) == depth-1
}

// WinDevices picks the media devices out of the keys read under the
// locations above: DirectShow video filters (FriendlyName), Media
// Foundation virtual cameras (FriendlyName, else DeviceDesc) and active
// audio capture endpoints ("DeviceDesc (adapter)" as Windows shows them,
// e.g. "Microphone (Voicemod Virtual Audio Device (WDM))").
func WinDevices(keys []RegKey) []*agentv1.MediaDevice {
	var out []*agentv1.MediaDevice
	state := map[string]string{} // endpoint key → DeviceState
	for _, k := range keys {
		if under(k.Path, WinAudioCaptureKey, 1) {
			state[strings.ToLower(k.Path)] = k.Values["DeviceState"].Data
		}
	}
	for _, k := range keys {
		switch {
		case under(k.Path, WinDirectShowVideoKey, 1), under(k.Path, WinDirectShowVideoKey32, 1):
			if n := k.Values["FriendlyName"].Data; n != "" {
				out = append(out, &agentv1.MediaDevice{Kind: "video", Name: n, Source: SourceDirectShow, Location: k.Path})
			}
		case under(k.Path, WinVirtualCameraKey, 1):
			n := k.Values["FriendlyName"].Data
			if n == "" {
				n = deviceDesc(k.Values["DeviceDesc"].Data)
			}
			if n != "" {
				out = append(out, &agentv1.MediaDevice{Kind: "video", Name: n, Source: SourceMFVirtualCamera, Location: k.Path})
			}
		case under(k.Path, WinAudioCaptureKey, 2) && strings.EqualFold(k.Path[strings.LastIndexByte(k.Path, '\\')+1:], "Properties"):
			endpoint := k.Path[:strings.LastIndexByte(k.Path, '\\')]
			if st, ok := state[strings.ToLower(endpoint)]; ok && st != "" && !dwordIs(st, winDeviceStateActive) {
				continue
			}
			n := k.Values[winPKeyFriendlyName].Data
			if n == "" {
				desc, adapter := k.Values[winPKeyDeviceDesc].Data, k.Values[winPKeyAdapterName].Data
				if adapter == "" {
					adapter = k.Values[winPKeyInterfaceFriendlyName].Data
				}
				switch {
				case desc != "" && adapter != "":
					n = desc + " (" + adapter + ")"
				case adapter != "":
					n = adapter
				default:
					n = desc
				}
			}
			if n != "" {
				out = append(out, &agentv1.MediaDevice{Kind: "audio", Name: n, Source: SourceAudioEndpoint, Location: endpoint})
			}
		}
	}
	return out
}

// deviceDesc strips the "@driver.inf,%key%;" prefix of a DeviceDesc.
func deviceDesc(s string) string {
	if strings.HasPrefix(s, "@") {
		if _, after, ok := strings.Cut(s, ";"); ok {
			return after
		}
	}
	return s
}

// dwordIs reports whether reg.exe's "0x1" (or a decimal) is v.
func dwordIs(s string, v uint64) bool {
	n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 32)
	if !strings.HasPrefix(strings.ToLower(s), "0x") {
		n, err = strconv.ParseUint(s, 10, 32)
	}
	return err == nil && n == v
}
