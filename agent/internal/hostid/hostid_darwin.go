package hostid

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

const (
	ioregPath         = "/usr/sbin/ioreg"
	systemVersionPath = "/System/Library/CoreServices/SystemVersion.plist"
)

// collectLive reads the running macOS system: the IOPlatformExpertDevice
// registry entry through ioreg, the kernel through sysctl, the OS version
// from SystemVersion.plist.
func collectLive(ctx context.Context) (*agentv1.HostIdentity, error) {
	id := &agentv1.HostIdentity{Os: &agentv1.OperatingSystem{Family: "darwin", Arch: runtime.GOARCH}}
	var problems []error

	if out, err := runIOReg(ctx); err != nil {
		problems = append(problems, err)
	} else if p, err := parseIOPlatform(out); err != nil {
		problems = append(problems, err)
	} else {
		id.HardwareUuid = p.UUID
		// IOPlatformUUID is also the OS's own machine identifier (what
		// gethostuuid(2) returns).
		id.MachineId = p.UUID
		id.SerialNumber = p.Serial
		id.HardwareVendor = p.Manufacturer
		id.HardwareModel = p.Model
	}
	if id.HardwareModel == "" {
		if m, err := unix.Sysctl("hw.model"); err == nil {
			id.HardwareModel = dmiString(m)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	if h, err := os.Hostname(); err == nil {
		id.Hostname = cleanString(h)
	}
	if b, err := os.ReadFile(systemVersionPath); err == nil {
		if v, err := parseSystemVersion(b); err == nil {
			id.Os.Name, id.Os.Version, id.Os.Build = v.Name, v.Version, v.Build
		}
	}
	if k, err := unix.Sysctl("kern.osrelease"); err == nil {
		id.Os.Kernel = cleanString(k)
	}
	if tv, err := unix.SysctlTimeval("kern.boottime"); err == nil && tv.Sec > 0 {
		id.BootTime = timestamppb.New(time.Unix(int64(tv.Sec), int64(tv.Usec)*int64(time.Microsecond)).UTC())
	}
	return finish(id, problems)
}

// runIOReg runs `ioreg -a -d2 -c IOPlatformExpertDevice`.
func runIOReg(ctx context.Context) ([]byte, error) {
	out, err := exec.CommandContext(ctx, ioregPath, "-a", "-d2", "-c", "IOPlatformExpertDevice").Output()
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", ioregPath, err)
	}
	return out, nil
}
