package display

// The Windows reader. Monitors are the present device nodes of the Monitor
// setup class (GUID_DEVCLASS_MONITOR); the EDID the monitor served is the
// "EDID" value of each node's hardware key, opened with
// SetupDiOpenDevRegKey(DICS_FLAG_GLOBAL, DIREG_DEV), i.e.
// HKLM\SYSTEM\CurrentControlSet\Enum\DISPLAY\<id>\<instance>\Device Parameters.
// Which monitor is the built-in panel and which are lit comes from the
// DisplayConfig API (QueryDisplayConfig + DisplayConfigGetDeviceInfo with
// DISPLAYCONFIG_DEVICE_INFO_GET_TARGET_NAME), matched by monitor device
// path. DisplayConfig needs an interactive session; where it fails (a
// service in session 0) the displays are still reported, with internal
// and active false. The lid state is left unspecified: Windows offers it
// only as a power-setting notification (GUID_LIDSWITCH_STATE_CHANGE).

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

var (
	// GUID_DEVCLASS_MONITOR (devguid.h).
	winGUIDClassMonitor = windows.GUID{Data1: 0x4d36e96e, Data2: 0xe325, Data3: 0x11ce, Data4: [8]byte{0xbf, 0xc1, 0x08, 0x00, 0x2b, 0xe1, 0x03, 0x18}}

	winUser32                       = windows.NewLazySystemDLL("user32.dll")
	winProcGetDisplayConfigBufSizes = winUser32.NewProc("GetDisplayConfigBufferSizes")
	winProcQueryDisplayConfig       = winUser32.NewProc("QueryDisplayConfig")
	winProcDisplayConfigGetDevInfo  = winUser32.NewProc("DisplayConfigGetDeviceInfo")
)

// QueryDisplayConfig flags and DisplayConfigGetDeviceInfo request type
// (wingdi.h).
const (
	winQDCAllPaths        = 0x00000001
	winQDCOnlyActivePaths = 0x00000002
	winGetTargetName      = 2
	winMaxPaths           = 4096
)

// winLUID mirrors LUID.
type winLUID struct {
	LowPart  uint32
	HighPart int32
}

// winPathInfo mirrors DISPLAYCONFIG_PATH_INFO (72 bytes): source info (20
// bytes), target info (48 bytes), flags.
type winPathInfo struct {
	SourceAdapterID   winLUID
	SourceID          uint32
	SourceModeInfoIdx uint32
	SourceStatusFlags uint32

	TargetAdapterID   winLUID
	TargetID          uint32
	TargetModeInfoIdx uint32
	OutputTechnology  uint32
	Rotation          uint32
	Scaling           uint32
	RefreshNumerator  uint32
	RefreshDenom      uint32
	ScanLineOrdering  uint32
	TargetAvailable   int32
	TargetStatusFlags uint32

	Flags uint32
}

// winModeInfo mirrors DISPLAYCONFIG_MODE_INFO (64 bytes); the union is not
// read.
type winModeInfo struct {
	InfoType  uint32
	ID        uint32
	AdapterID winLUID
	_         [48]byte
}

// winTargetDeviceName mirrors DISPLAYCONFIG_TARGET_DEVICE_NAME (420
// bytes), header included.
type winTargetDeviceName struct {
	Type      uint32
	Size      uint32
	AdapterID winLUID
	ID        uint32

	Flags                     uint32
	OutputTechnology          uint32
	EdidManufactureID         uint16
	EdidProductCodeID         uint16
	ConnectorInstance         uint32
	MonitorFriendlyDeviceName [64]uint16
	MonitorDevicePath         [128]uint16
}

func init() {
	if unsafe.Sizeof(winPathInfo{}) != 72 || unsafe.Sizeof(winModeInfo{}) != 64 || unsafe.Sizeof(winTargetDeviceName{}) != 420 {
		panic("display: DISPLAYCONFIG structure layout mismatch")
	}
}

func readLive(ctx context.Context) (*agentv1.Displays, error) {
	mons, err := winMonitors()
	if err != nil {
		return nil, fmt.Errorf("display: setupapi: %w", err)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// DisplayConfig failures only cost the internal/active flags.
	targets, _ := winTargets()
	return winBuildDisplays(mons, targets), nil
}

// winMonitors lists the present monitor device nodes and their EDIDs.
func winMonitors() ([]winMonitor, error) {
	set, err := windows.SetupDiGetClassDevsEx(&winGUIDClassMonitor, "", 0, windows.DIGCF_PRESENT, 0, "")
	if err != nil {
		return nil, err
	}
	defer set.Close()
	var out []winMonitor
	for i := 0; ; i++ {
		data, err := set.EnumDeviceInfo(i)
		if err != nil {
			if errors.Is(err, windows.ERROR_NO_MORE_ITEMS) {
				break
			}
			continue
		}
		id, err := set.DeviceInstanceID(data)
		if err != nil || id == "" {
			continue
		}
		out = append(out, winMonitor{InstanceID: id, EDID: winReadEDID(set, data)})
	}
	return out, nil
}

// winReadEDID reads the EDID value of a monitor's hardware key; nil when
// there is none or it is larger than an EDID can be.
func winReadEDID(set windows.DevInfo, data *windows.DevInfoData) []byte {
	h, err := set.OpenDevRegKey(data, windows.DICS_FLAG_GLOBAL, 0, windows.DIREG_DEV, windows.KEY_READ)
	if err != nil {
		return nil
	}
	k := registry.Key(h)
	defer k.Close()
	b, _, err := k.GetBinaryValue("EDID")
	if err != nil || len(b) > MaxSize {
		return nil
	}
	return b
}

// winTargets returns the display targets on every path, marking those on
// an active path.
func winTargets() ([]winTarget, error) {
	if err := winUser32.Load(); err != nil {
		return nil, err
	}
	all, err := winQueryPaths(winQDCAllPaths)
	if err != nil {
		return nil, err
	}
	actives, _ := winQueryPaths(winQDCOnlyActivePaths)
	type tkey struct {
		adapter winLUID
		id      uint32
	}
	active := map[tkey]bool{}
	for _, p := range actives {
		active[tkey{p.TargetAdapterID, p.TargetID}] = true
	}
	seen := map[tkey]bool{}
	var out []winTarget
	for _, p := range append(actives, all...) {
		k := tkey{p.TargetAdapterID, p.TargetID}
		if seen[k] {
			continue
		}
		seen[k] = true
		n := winTargetDeviceName{Type: winGetTargetName, AdapterID: p.TargetAdapterID, ID: p.TargetID}
		n.Size = uint32(unsafe.Sizeof(n))
		if r, _, _ := winProcDisplayConfigGetDevInfo.Call(uintptr(unsafe.Pointer(&n))); r != 0 {
			continue
		}
		out = append(out, winTarget{
			MonitorDevicePath: windows.UTF16ToString(n.MonitorDevicePath[:]),
			OutputTechnology:  n.OutputTechnology,
			Active:            active[k],
		})
	}
	return out, nil
}

// winQueryPaths calls QueryDisplayConfig, retrying while the configuration
// changes between the size query and the query.
func winQueryPaths(flags uint32) ([]winPathInfo, error) {
	for try := 0; try < 5; try++ {
		var np, nm uint32
		if r, _, _ := winProcGetDisplayConfigBufSizes.Call(uintptr(flags), uintptr(unsafe.Pointer(&np)), uintptr(unsafe.Pointer(&nm))); r != 0 {
			return nil, windows.Errno(r)
		}
		if np == 0 {
			return nil, nil
		}
		if np > winMaxPaths || nm > 2*winMaxPaths {
			return nil, errors.New("display: too many display paths")
		}
		paths := make([]winPathInfo, np)
		modes := make([]winModeInfo, max(nm, 1))
		r, _, _ := winProcQueryDisplayConfig.Call(uintptr(flags),
			uintptr(unsafe.Pointer(&np)), uintptr(unsafe.Pointer(&paths[0])),
			uintptr(unsafe.Pointer(&nm)), uintptr(unsafe.Pointer(&modes[0])), 0)
		switch windows.Errno(r) {
		case 0:
			return paths[:min(int(np), len(paths))], nil
		case windows.ERROR_INSUFFICIENT_BUFFER:
			continue
		default:
			return nil, windows.Errno(r)
		}
	}
	return nil, windows.ERROR_INSUFFICIENT_BUFFER
}
