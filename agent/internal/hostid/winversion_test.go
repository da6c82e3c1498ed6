package hostid

import (
	"runtime"
	"testing"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func TestWindowsVersion(t *testing.T) {
	for _, c := range []struct {
		in   windowsVersion
		want *agentv1.OperatingSystem
	}{
		{
			windowsVersion{Major: 10, Build: 26100, UBR: 2314, ProductName: "Windows 10 Pro", DisplayVersion: "24H2"},
			&agentv1.OperatingSystem{Name: "Windows 11 Pro 24H2", Version: "10.0.26100", Build: "26100.2314", Kernel: "10.0.26100.2314"},
		},
		{
			windowsVersion{Major: 10, Build: 19045, UBR: 5131, ProductName: "Windows 10 Enterprise", DisplayVersion: "22H2"},
			&agentv1.OperatingSystem{Name: "Windows 10 Enterprise 22H2", Version: "10.0.19045", Build: "19045.5131", Kernel: "10.0.19045.5131"},
		},
		{
			windowsVersion{Major: 10, Build: 20348, ProductName: "Windows Server 2022 Datacenter"},
			&agentv1.OperatingSystem{Name: "Windows Server 2022 Datacenter", Version: "10.0.20348", Build: "20348", Kernel: "10.0.20348"},
		},
		{
			windowsVersion{Major: 6, Minor: 3, Build: 9600},
			&agentv1.OperatingSystem{Version: "6.3.9600", Build: "9600", Kernel: "6.3.9600"},
		},
		{windowsVersion{DisplayVersion: "24H2"}, &agentv1.OperatingSystem{}},
	} {
		c.want.Family, c.want.Arch = "windows", runtime.GOARCH
		assertOS(t, c.in.operatingSystem(), c.want)
	}
}

func assertOS(t *testing.T, got, want *agentv1.OperatingSystem) {
	t.Helper()
	assertIdentity(t, &agentv1.HostIdentity{Os: got}, &agentv1.HostIdentity{Os: want})
}
