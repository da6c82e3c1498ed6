package hostid

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// deniedFS refuses to open the named files, as a non-root agent is refused
// the 0400 DMI files.
type deniedFS struct {
	fs.FS
	denied map[string]bool
}

func (d deniedFS) Open(name string) (fs.File, error) {
	if d.denied[name] {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return d.FS.Open(name)
}

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

func TestReadTreeUnprivileged(t *testing.T) {
	fsys := deniedFS{
		FS: fstest.MapFS{
			pathProductUUID:   file("5A8C1D2E-3B4F-4A6B-9C7D-0E1F2A3B4C5D\n"),
			pathProductSerial: file("PF2XAMPL\n"),
			pathBoardSerial:   file("L1HF1AB00CD\n"),
			pathSysVendor:     file("LENOVO\n"),
			pathProductName:   file("20XW00ABUS\n"),
			pathMachineID:     file("0123456789abcdef0123456789abcdef\n"),
		},
		denied: map[string]bool{pathProductUUID: true, pathProductSerial: true, pathBoardSerial: true},
	}
	id, problems, err := readTree(t.Context(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	if id.HardwareUuid != "" || id.SerialNumber != "" {
		t.Errorf("read denied files: uuid %q serial %q", id.HardwareUuid, id.SerialNumber)
	}
	if id.HardwareVendor != "LENOVO" || id.HardwareModel != "20XW00ABUS" {
		t.Errorf("vendor/model = %q/%q", id.HardwareVendor, id.HardwareModel)
	}
	if id.MachineId != "0123456789abcdef0123456789abcdef" {
		t.Errorf("MachineId = %q", id.MachineId)
	}
	if _, err := finish(id, problems); err != nil {
		t.Errorf("finish: %v, want success with a machine id only", err)
	}

	// Without the machine id, nothing identifying is left; the error says why.
	delete(fsys.FS.(fstest.MapFS), pathMachineID)
	id, problems, err = readTree(t.Context(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	_, err = finish(id, problems)
	if !errors.Is(err, ErrNoIdentity) || !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("finish error = %v, want ErrNoIdentity and ErrPermission", err)
	}
	for _, want := range []string{"hardware uuid", "serial number", "board serial", "machine id"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestReadTreeFallbacks(t *testing.T) {
	fsys := fstest.MapFS{
		pathProductUUID:    file("{5A8C1D2E3B4F4A6B9C7D0E1F2A3B4C5D}"),
		pathProductSerial:  file("Default string\n"),
		pathBoardSerial:    file("  BSN-12345 \n"),
		pathMachineID:      file("uninitialized\n"),
		pathDBusMachineID:  file("FEDCBA9876543210FEDCBA9876543210\n"),
		pathHostname:       file("# set by the installer\n\n  ws-17  \n"),
		pathKernelHostname: file("other\n"),
		pathOSRelease:      file("ID=nameless\n"),
		pathUsrOSRelease:   file("NAME=Ignored\n"),
	}
	id, _, err := readTree(t.Context(), fsys)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ field, got, want string }{
		{"HardwareUuid", id.HardwareUuid, "5a8c1d2e-3b4f-4a6b-9c7d-0e1f2a3b4c5d"},
		{"SerialNumber", id.SerialNumber, "BSN-12345"},
		{"MachineId", id.MachineId, "fedcba9876543210fedcba9876543210"},
		{"Hostname", id.Hostname, "ws-17"},
		// etc/os-release exists, so usr/lib is not read; NAME defaults to Linux.
		{"Os.Name", id.Os.Name, "Linux"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if id.BootTime != nil {
		t.Errorf("BootTime = %v without proc/stat", id.BootTime)
	}
}

func TestReadTreeCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := readTree(ctx, fstest.MapFS{}); !errors.Is(err, context.Canceled) {
		t.Errorf("readTree(cancelled) error = %v", err)
	}
}
