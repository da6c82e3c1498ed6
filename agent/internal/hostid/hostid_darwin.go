package hostid

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"time"
	"unsafe"

	"github.com/google/uuid"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bonafide-sec/bonafide/agent/internal/cmdx"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

const (
	ioregPath         = "/usr/sbin/ioreg"
	systemVersionPath = "/System/Library/CoreServices/SystemVersion.plist"
	// ioregTimeout and ioregMaxOutput bound the ioreg run (its output for
	// the platform device is a few kilobytes).
	ioregTimeout   = 10 * time.Second
	ioregMaxOutput = 1 << 20
)

// collectLive reads the running macOS system: the IOPlatformExpertDevice
// registry entry through ioreg, the kernel through sysctl, the OS version
// from SystemVersion.plist. When ioreg fails (hangs and is killed at its
// deadline, prints something else), the identity falls back to the
// kernel: gethostuuid(2) for the platform UUID and sysctl hw.model; only
// the serial number is then missing. (Not sysctl kern.uuid: that is the
// running kernel image's build UUID, which changes with every update.)
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
	if id.HardwareUuid == "" {
		if u, err := hostUUID(); err == nil {
			id.HardwareUuid = dmiUUID(u)
			id.MachineId = id.HardwareUuid
		} else {
			problems = append(problems, err)
		}
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
	return cmdx.Run(ctx, ioregTimeout, ioregMaxOutput, ioregPath, "-a", "-d2", "-c", "IOPlatformExpertDevice")
}

// hostUUID is gethostuuid(2): the platform UUID (IOPlatformUUID, the
// "Hardware UUID" of System Information), read from the kernel without
// running a command.
func hostUUID() (string, error) {
	var id uuid.UUID
	wait := unix.NsecToTimespec(int64(5 * time.Second))
	_, _, errno := unix.Syscall(unix.SYS_GETHOSTUUID, uintptr(unsafe.Pointer(&id[0])), uintptr(unsafe.Pointer(&wait)), 0)
	if errno != 0 {
		return "", fmt.Errorf("gethostuuid: %w", errno)
	}
	return id.String(), nil
}
