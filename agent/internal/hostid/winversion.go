package hostid

import (
	"fmt"
	"runtime"
	"strings"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// windowsVersion is what the agent reads about the running Windows:
// RtlGetVersion's numbers and values of
// HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion.
type windowsVersion struct {
	Major, Minor, Build uint32 // RtlGetVersion
	UBR                 uint32 // update build revision (CurrentVersion\UBR), 0 if unknown
	ProductName         string // CurrentVersion\ProductName, e.g. "Windows 10 Pro"
	DisplayVersion      string // CurrentVersion\DisplayVersion ("23H2"), else ReleaseId ("1909")
}

// firstWindows11Build is the build number of Windows 11's first release
// (21H2). Microsoft documents that Windows 11 is told apart from
// Windows 10 by build number >= 22000.
const firstWindows11Build = 22000

// operatingSystem turns the version into the wire form:
// name "Windows 11 Pro 24H2", version "10.0.26100", build "26100.2314",
// kernel "10.0.26100.2314".
//
// Windows 11 keeps ProductName "Windows 10 …" in the registry, so the name
// is corrected by build number.
func (v windowsVersion) operatingSystem() *agentv1.OperatingSystem {
	name := cleanString(v.ProductName)
	if v.Build >= firstWindows11Build {
		if rest, ok := strings.CutPrefix(name, "Windows 10"); ok {
			name = "Windows 11" + rest
		}
	}
	if dv := cleanString(v.DisplayVersion); dv != "" && name != "" {
		name = cleanString(name + " " + dv)
	}
	o := &agentv1.OperatingSystem{
		Family: "windows",
		Name:   name,
		Arch:   runtime.GOARCH,
	}
	if v.Major != 0 {
		o.Version = fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Build)
		o.Build = fmt.Sprint(v.Build)
		o.Kernel = o.Version
		if v.UBR != 0 {
			o.Build = fmt.Sprintf("%d.%d", v.Build, v.UBR)
			o.Kernel = fmt.Sprintf("%s.%d", o.Version, v.UBR)
		}
	}
	return o
}
