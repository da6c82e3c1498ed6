package hostid

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// maxSmallFile bounds the read of one-line files (DMI attributes,
// machine-id, host name, kernel release).
const maxSmallFile = 4096

// Paths of the Linux layout, relative to the root.
const (
	dmiDir             = "sys/class/dmi/id/"
	pathProductUUID    = dmiDir + "product_uuid"
	pathProductSerial  = dmiDir + "product_serial"
	pathBoardSerial    = dmiDir + "board_serial"
	pathSysVendor      = dmiDir + "sys_vendor"
	pathProductName    = dmiDir + "product_name"
	pathMachineID      = "etc/machine-id"
	pathDBusMachineID  = "var/lib/dbus/machine-id"
	pathHostname       = "etc/hostname"
	pathKernelHostname = "proc/sys/kernel/hostname"
	pathOSRelease      = "etc/os-release"
	pathUsrOSRelease   = "usr/lib/os-release"
	pathKernelRelease  = "proc/sys/kernel/osrelease"
	pathProcStat       = "proc/stat"
)

// readTree reads the identity of a Linux-layout tree. Every piece is
// optional: what cannot be read is left empty and the reason is returned in
// problems, for the error Collect gives when nothing identifying was found.
// Only a cancelled context is an error.
func readTree(ctx context.Context, fsys fs.FS) (id *agentv1.HostIdentity, problems []error, err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	id = &agentv1.HostIdentity{Os: &agentv1.OperatingSystem{Family: "linux", Arch: runtime.GOARCH}}
	note := func(what string, err error) {
		problems = append(problems, fmt.Errorf("%s: %w", what, err))
	}

	// DMI (SMBIOS as exported by the kernel). product_uuid, product_serial
	// and board_serial are mode 0400: a non-root agent cannot read them.
	if b, err := readSmall(fsys, pathProductUUID); err == nil {
		id.HardwareUuid = dmiUUID(string(b))
	} else {
		note("hardware uuid", err)
	}
	if b, err := readSmall(fsys, pathProductSerial); err == nil {
		id.SerialNumber = dmiString(string(b))
	} else {
		note("serial number", err)
	}
	if id.SerialNumber == "" {
		// White-box desktops often leave the system serial unset but have
		// the board vendor's serial in the base board structure.
		if b, err := readSmall(fsys, pathBoardSerial); err == nil {
			id.SerialNumber = dmiString(string(b))
		} else {
			note("board serial", err)
		}
	}
	if b, err := readSmall(fsys, pathSysVendor); err == nil {
		id.HardwareVendor = dmiString(string(b))
	}
	if b, err := readSmall(fsys, pathProductName); err == nil {
		id.HardwareModel = dmiString(string(b))
	}

	for _, p := range []string{pathMachineID, pathDBusMachineID} {
		b, err := readSmall(fsys, p)
		if err != nil {
			note("machine id", err)
			continue
		}
		if id.MachineId = parseMachineID(b); id.MachineId != "" {
			break
		}
		note("machine id", fmt.Errorf("%s: not a machine id", p))
	}

	if b, err := readSmall(fsys, pathHostname); err == nil {
		id.Hostname = parseHostname(b)
	}
	if id.Hostname == "" {
		if b, err := readSmall(fsys, pathKernelHostname); err == nil {
			id.Hostname = parseHostname(b)
		}
	}

	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	for _, p := range []string{pathOSRelease, pathUsrOSRelease} {
		vars, err := readOSRelease(fsys, p)
		if err != nil {
			continue
		}
		applyOSRelease(id.Os, vars)
		break
	}
	if b, err := readSmall(fsys, pathKernelRelease); err == nil {
		id.Os.Kernel = cleanString(string(b))
	}
	if t, err := readBootTime(fsys); err == nil {
		id.BootTime = timestamppb.New(t)
	}
	return id, problems, nil
}

// applyOSRelease fills name, version and build from os-release variables.
// NAME defaults to "Linux" (os-release(5)).
func applyOSRelease(o *agentv1.OperatingSystem, vars map[string]string) {
	o.Name = cleanString(vars["NAME"])
	if o.Name == "" {
		o.Name = "Linux"
	}
	o.Version = cleanString(vars["VERSION_ID"])
	o.Build = cleanString(vars["BUILD_ID"])
}

func readSmall(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSmallFile))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}

func readOSRelease(fsys fs.FS, name string) (map[string]string, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vars, err := parseOSRelease(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return vars, nil
}

func readBootTime(fsys fs.FS) (t time.Time, err error) {
	f, err := fsys.Open(pathProcStat)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	return parseProcStatBootTime(f)
}

// finish returns id when it holds something that identifies the machine
// (hardware UUID, serial number or machine id), else an error wrapping
// ErrNoIdentity and the reasons the pieces were missing.
func finish(id *agentv1.HostIdentity, problems []error) (*agentv1.HostIdentity, error) {
	if id.GetHardwareUuid() != "" || id.GetSerialNumber() != "" || id.GetMachineId() != "" {
		return id, nil
	}
	if len(problems) == 0 {
		return nil, ErrNoIdentity
	}
	return nil, fmt.Errorf("%w: %w", ErrNoIdentity, errors.Join(problems...))
}
