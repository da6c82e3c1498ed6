// Package hostid reads the identity of the host the agent runs on: the
// hardware UUID and serial number from the firmware (SMBIOS), the OS
// installation id, the host name, the operating system and the boot time.
//
// The live system is read with each OS's own interfaces (hostid_linux.go,
// hostid_darwin.go, hostid_windows.go); the bytes those interfaces return
// are decoded by pure parsers (os-release, /proc/stat, ioreg and
// SystemVersion.plist, the SMBIOS table) that build and are tested on every
// GOOS. Any root other than "/" is read as a Linux-layout tree, which makes
// each fixture directory a device of its own.
package hostid

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// ErrNoIdentity is returned when none of the hardware UUID, the serial
// number and the machine id could be read.
var ErrNoIdentity = errors.New("no hardware uuid, serial number or machine id")

// Collect reads the identity of the machine whose filesystem root is root.
// root "/" (or "") means the live system, read with the OS's own APIs.
// Any other root is read as a Linux-layout tree on every OS (fixture roots).
//
// Pieces that cannot be read (a DMI file readable only by root, a missing
// os-release) are left empty. Collect fails only when nothing identifying
// (hardware UUID, serial number, machine id) can be read; that error wraps
// ErrNoIdentity. The caller sets agent_id and agent_version.
func Collect(ctx context.Context, root string) (*agentv1.HostIdentity, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("collect host identity: %w", err)
	}
	if isLiveRoot(root) {
		id, err := collectLive(ctx)
		if err != nil {
			return nil, fmt.Errorf("collect host identity: %w", err)
		}
		return id, nil
	}
	// os.Root keeps symlinks inside the tree from reaching the live system
	// (an absolute etc/os-release link in a copied root image would
	// otherwise describe the machine the agent runs on).
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("collect host identity: open root: %w", err)
	}
	defer r.Close()
	id, problems, err := readTree(ctx, r.FS())
	if err != nil {
		return nil, fmt.Errorf("collect host identity under %s: %w", root, err)
	}
	id, err = finish(id, problems)
	if err != nil {
		return nil, fmt.Errorf("collect host identity under %s: %w", root, err)
	}
	return id, nil
}

// isLiveRoot reports whether root names the live system.
func isLiveRoot(root string) bool {
	return root == "" || filepath.ToSlash(filepath.Clean(root)) == "/"
}
