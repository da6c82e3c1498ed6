package hostid

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// maxSMBIOSSize bounds the firmware table buffer; real tables are a few
// kilobytes to a few tens of kilobytes.
const maxSMBIOSSize = 16 << 20

// collectLive reads the running Windows system: the SMBIOS table through
// GetSystemFirmwareTable, MachineGuid and the version from the registry,
// the boot time from GetTickCount64.
func collectLive(ctx context.Context) (*agentv1.HostIdentity, error) {
	id := &agentv1.HostIdentity{}
	var problems []error
	kernel32 := windows.NewLazySystemDLL("kernel32.dll")

	if raw, err := readSMBIOS(kernel32); err != nil {
		problems = append(problems, err)
	} else if sys, err := parseSMBIOS(raw); err != nil {
		problems = append(problems, err)
	} else {
		id.HardwareUuid = sys.UUID
		id.SerialNumber = sys.Serial
		id.HardwareVendor = sys.Manufacturer
		id.HardwareModel = sys.Product
	}
	if id.HardwareVendor == "" || id.HardwareModel == "" {
		// Windows copies type 1 manufacturer and product here at boot.
		vendor, model := biosRegistryStrings()
		if id.HardwareVendor == "" {
			id.HardwareVendor = vendor
		}
		if id.HardwareModel == "" {
			id.HardwareModel = model
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	if guid, err := machineGUID(); err != nil {
		problems = append(problems, err)
	} else {
		id.MachineId = guid
	}
	if h, err := os.Hostname(); err == nil {
		id.Hostname = cleanString(h)
	}
	id.Os = readWindowsVersion().operatingSystem()
	if t, err := bootTime(kernel32); err == nil {
		id.BootTime = timestamppb.New(t)
	}
	return finish(id, problems)
}

// readSMBIOS returns the raw SMBIOS firmware table (a RawSMBIOSData
// structure), from GetSystemFirmwareTable('RSMB', 0, buf, size).
//
//	UINT GetSystemFirmwareTable(DWORD FirmwareTableProviderSignature,
//	    DWORD FirmwareTableID, PVOID pFirmwareTableBuffer, DWORD BufferSize);
//
// It returns the size written, the size needed when the buffer is too
// small, or 0 on failure (GetLastError).
func readSMBIOS(kernel32 *windows.LazyDLL) ([]byte, error) {
	proc := kernel32.NewProc("GetSystemFirmwareTable")
	if err := proc.Find(); err != nil {
		return nil, fmt.Errorf("smbios: %w", err)
	}
	const rsmb = 'R'<<24 | 'S'<<16 | 'M'<<8 | 'B'
	r1, _, callErr := proc.Call(rsmb, 0, 0, 0)
	size := uint32(r1)
	// The table can change size between calls (not in practice, but the
	// API allows it), so retry a few times with the size it asked for.
	for range 3 {
		if size == 0 {
			return nil, fmt.Errorf("smbios: GetSystemFirmwareTable(RSMB): %w", callErr)
		}
		if size > maxSMBIOSSize {
			return nil, fmt.Errorf("smbios: GetSystemFirmwareTable(RSMB): table of %d bytes", size)
		}
		buf := make([]byte, size)
		r1, _, callErr = proc.Call(rsmb, 0, uintptr(unsafe.Pointer(&buf[0])), uintptr(size))
		n := uint32(r1)
		if n != 0 && n <= size {
			return buf[:n], nil
		}
		size = n
	}
	return nil, errors.New("smbios: GetSystemFirmwareTable(RSMB): table size kept changing")
}

// bootTime is now minus GetTickCount64 (milliseconds since boot, sleep
// included; after a Fast Startup "shutdown" it counts from the last full
// boot). It is rounded to the second so that repeated scans agree.
func bootTime(kernel32 *windows.LazyDLL) (time.Time, error) {
	proc := kernel32.NewProc("GetTickCount64")
	if err := proc.Find(); err != nil {
		return time.Time{}, fmt.Errorf("boot time: %w", err)
	}
	r1, r2, _ := proc.Call()
	ms := uint64(r1)
	if unsafe.Sizeof(uintptr(0)) == 4 {
		// On 32-bit Windows the ULONGLONG comes back in two registers.
		ms |= uint64(r2) << 32
	}
	if ms > math.MaxInt64/uint64(time.Millisecond) {
		return time.Time{}, fmt.Errorf("boot time: tick count %d out of range", ms)
	}
	return time.Now().Add(-time.Duration(ms) * time.Millisecond).Round(time.Second).UTC(), nil
}

// machineGUID reads HKLM\SOFTWARE\Microsoft\Cryptography\MachineGuid, the
// id Windows setup generates for the installation.
func machineGUID() (string, error) {
	const path = `SOFTWARE\Microsoft\Cryptography`
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, path, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if err != nil {
		return "", fmt.Errorf("machine id: open HKLM\\%s: %w", path, err)
	}
	defer k.Close()
	v, _, err := k.GetStringValue("MachineGuid")
	if err != nil {
		return "", fmt.Errorf("machine id: HKLM\\%s\\MachineGuid: %w", path, err)
	}
	if g := dmiUUID(v); g != "" {
		return g, nil
	}
	return "", fmt.Errorf("machine id: HKLM\\%s\\MachineGuid is empty", path)
}

// biosRegistryStrings returns SystemManufacturer and SystemProductName from
// HKLM\HARDWARE\DESCRIPTION\System\BIOS, or empty strings.
func biosRegistryStrings() (vendor, model string) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `HARDWARE\DESCRIPTION\System\BIOS`, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if err != nil {
		return "", ""
	}
	defer k.Close()
	vendor, _, _ = k.GetStringValue("SystemManufacturer")
	model, _, _ = k.GetStringValue("SystemProductName")
	return dmiString(vendor), dmiString(model)
}

// readWindowsVersion reads RtlGetVersion (not GetVersionEx, which lies to
// programs without a compatibility manifest) and the CurrentVersion key.
func readWindowsVersion() windowsVersion {
	info := windows.RtlGetVersion()
	v := windowsVersion{Major: info.MajorVersion, Minor: info.MinorVersion, Build: info.BuildNumber}
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SOFTWARE\Microsoft\Windows NT\CurrentVersion`, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if err != nil {
		return v
	}
	defer k.Close()
	v.ProductName, _, _ = k.GetStringValue("ProductName")
	v.DisplayVersion, _, _ = k.GetStringValue("DisplayVersion")
	if v.DisplayVersion == "" {
		v.DisplayVersion, _, _ = k.GetStringValue("ReleaseId")
	}
	if ubr, _, err := k.GetIntegerValue("UBR"); err == nil && ubr <= math.MaxUint32 {
		v.UBR = uint32(ubr)
	}
	return v
}
