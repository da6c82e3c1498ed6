package hostid

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func assertIdentity(t *testing.T, got, want *agentv1.HostIdentity) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Errorf("identity mismatch\n got: %s\nwant: %s",
			prototext.Format(got), prototext.Format(want))
	}
}

func TestCollectDebianRoot(t *testing.T) {
	got, err := Collect(t.Context(), filepath.Join("testdata", "root-debian"))
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	assertIdentity(t, got, &agentv1.HostIdentity{
		HardwareUuid: "4c4c4544-0058-4b10-8032-b7c04f4c4d33",
		SerialNumber: "7XK2LM3",
		MachineId:    "6f1c0a7e9b2d4e3f8a5b1c2d3e4f5a6b",
		Hostname:     "deb-laptop-042",
		Os: &agentv1.OperatingSystem{
			Family:  "linux",
			Name:    "Debian GNU/Linux",
			Version: "12",
			Build:   "",
			Kernel:  "6.1.0-28-amd64",
			Arch:    runtime.GOARCH,
		},
		HardwareVendor: "Dell Inc.",
		HardwareModel:  "Latitude 5440",
		BootTime:       timestamppb.New(time.Unix(1732350117, 0)),
	})
}

// root-whitebox has placeholder DMI values everywhere, no etc/machine-id,
// etc/hostname or etc/os-release (the fallbacks are present), and no
// kernel release or proc/stat.
func TestCollectWhiteboxRoot(t *testing.T) {
	got, err := Collect(t.Context(), filepath.Join("testdata", "root-whitebox"))
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	assertIdentity(t, got, &agentv1.HostIdentity{
		MachineId: "d41e6c7c2b8f4a0c9e3a5b7d1f2c4e6a",
		Hostname:  "farm-box-07",
		Os: &agentv1.OperatingSystem{
			Family: "linux",
			Name:   "Arch Linux",
			Build:  "rolling",
			Arch:   runtime.GOARCH,
		},
	})
}

func TestCollectEmptyRoot(t *testing.T) {
	_, err := Collect(t.Context(), t.TempDir())
	if !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("Collect(empty dir) error = %v, want ErrNoIdentity", err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Collect(empty dir) error = %v, want it to carry the missing-file reasons", err)
	}
}

func TestCollectBadRoot(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := Collect(t.Context(), missing); err == nil || errors.Is(err, ErrNoIdentity) {
		t.Errorf("Collect(missing dir) error = %v, want an open error", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Collect(t.Context(), file); err == nil {
		t.Error("Collect(regular file) succeeded, want an error")
	}
}

func TestCollectCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, root := range []string{"/", filepath.Join("testdata", "root-debian")} {
		if _, err := Collect(ctx, root); !errors.Is(err, context.Canceled) {
			t.Errorf("Collect(cancelled, %q) error = %v, want context.Canceled", root, err)
		}
	}
}

// A symlink in a fixture root must not reach outside it: an absolute
// etc/machine-id link is refused, and the dbus copy is used instead.
func TestCollectRootSymlinkStaysInside(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(t.TempDir(), "machine-id")
	writeFile(t, outside, "0123456789abcdef0123456789abcdef\n")
	writeFile(t, filepath.Join(root, "var/lib/dbus/machine-id"), "fedcba9876543210fedcba9876543210\n")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "etc/machine-id")); err != nil {
		t.Skipf("cannot create symlinks here: %v", err)
	}
	got, err := Collect(t.Context(), root)
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if got.MachineId != "fedcba9876543210fedcba9876543210" {
		t.Errorf("MachineId = %q, want the in-root dbus machine id", got.MachineId)
	}
}

func TestIsLiveRoot(t *testing.T) {
	for root, want := range map[string]bool{
		"": true, "/": true, "/.": true,
		"testdata/root-debian": false, ".": false, "/tmp": false,
	} {
		if got := isLiveRoot(root); got != want {
			t.Errorf("isLiveRoot(%q) = %v, want %v", root, got, want)
		}
	}
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
