// Package scan runs one look at the machine and assembles the HostSnapshot
// the agent reports. Each signal family is collected by its own package; a
// family that fails is recorded in the snapshot's signal statuses and does
// not stop the others. A scan has a deadline: a family that has not
// finished by then is reported with an error, and the scan returns.
package scan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/hostid"
	"github.com/bonafide-sec/bonafide/agent/internal/signal/display"
	"github.com/bonafide-sec/bonafide/agent/internal/signal/locale"
	"github.com/bonafide-sec/bonafide/agent/internal/signal/media"
	"github.com/bonafide-sec/bonafide/agent/internal/signal/network"
	"github.com/bonafide-sec/bonafide/agent/internal/signal/posture"
	"github.com/bonafide-sec/bonafide/agent/internal/signal/remoteaccess"
	"github.com/bonafide-sec/bonafide/agent/internal/signal/sessions"
	"github.com/bonafide-sec/bonafide/agent/internal/signal/usb"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// DefaultTimeout bounds a whole scan when Scanner.Timeout is zero. A scan
// takes seconds; each command it runs has its own, shorter deadline.
const DefaultTimeout = time.Minute

// Scanner collects snapshots of the machine whose filesystem root is Root.
type Scanner struct {
	Root    string
	Version string
	// AgentID is set once the agent is enrolled.
	AgentID string
	// Catalog is the remote-access catalog; nil means the embedded one.
	Catalog *policies.RemoteAccessCatalog
	// KVM is the KVM catalog; nil means the embedded one.
	KVM *policies.KVMCatalog
	// SessionsCursor is the login-history position already reported; ""
	// sends the history from the start (capped).
	SessionsCursor string
	// Activity, when set, gives the activity counts to report (the
	// running agent's recorder; `scan` has none).
	Activity func() *agentv1.Activity
	// Timeout bounds one scan; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Scan collects one snapshot within the scan's deadline. It fails only
// when the host identity cannot be read; every other family reports its
// own status, an error when the deadline cut it off.
func (s *Scanner) Scan(ctx context.Context) (*agentv1.HostSnapshot, error) {
	d := s.Timeout
	if d <= 0 {
		d = DefaultTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, d, fmt.Errorf("cut off by the scan deadline (%v): %w", d, context.DeadlineExceeded))
	defer cancel()
	// The collectors get copies of the fields they read: one left running
	// past the deadline must not race with the runner's next changes.
	root, cursor := s.Root, s.SessionsCursor
	sn := &agentv1.HostSnapshot{ScanStartedAt: timestamppb.Now()}
	id, err := within(ctx, func(ctx context.Context) (*agentv1.HostIdentity, error) { return hostid.Collect(ctx, root) })
	if err != nil {
		return nil, fmt.Errorf("host identity: %w", err)
	}
	id.AgentId, id.AgentVersion = s.AgentID, s.Version
	sn.Identity = id
	sn.Signals = append(sn.Signals, &agentv1.SignalStatus{Name: "identity", State: agentv1.SignalStatus_STATE_OK})
	// The catalog is parsed once per scan, when none was given.
	cat, catErr := s.Catalog, error(nil)
	if cat == nil {
		if cat, catErr = policies.RemoteAccess(policies.FS()); catErr != nil {
			catErr = fmt.Errorf("load catalog: %w", catErr)
		}
	}
	sn.RemoteAccess, err = within(ctx, func(ctx context.Context) (*agentv1.RemoteAccess, error) {
		if catErr != nil {
			return nil, catErr
		}
		return (&remoteaccess.Collector{Root: root, Catalog: cat}).Collect(ctx)
	})
	sn.Signals = append(sn.Signals, signalStatus("remoteaccess", err))
	sn.Usb, err = within(ctx, func(ctx context.Context) (*agentv1.Usb, error) { return usb.Collect(ctx, root) })
	sn.Signals = append(sn.Signals, signalStatus("usb", err))
	sn.Displays, err = within(ctx, func(ctx context.Context) (*agentv1.Displays, error) { return display.Collect(ctx, root) })
	sn.Signals = append(sn.Signals, signalStatus("display", err))
	var st *agentv1.SignalStatus
	sn.Peripherals, st = s.peripherals(sn)
	sn.Signals = append(sn.Signals, st)
	ads := adapters(cat)
	sn.Network, err = within(ctx, func(ctx context.Context) (*agentv1.Network, error) { return network.Collect(ctx, root, ads) })
	sn.Signals = append(sn.Signals, signalStatus("network", err))
	sn.Locale, err = within(ctx, func(ctx context.Context) (*agentv1.Locale, error) { return locale.Collect(ctx, root, time.Now()) })
	sn.Signals = append(sn.Signals, signalStatus("locale", err))
	sn.Sessions, err = within(ctx, func(ctx context.Context) (*agentv1.Sessions, error) { return sessions.Collect(ctx, root, cursor) })
	sn.Signals = append(sn.Signals, signalStatus("sessions", err))
	sn.Media, err = within(ctx, func(ctx context.Context) (*agentv1.Media, error) { return media.Collect(ctx, root) })
	sn.Signals = append(sn.Signals, signalStatus("media", err))
	if err == nil {
		// Matched here for `scan`; the collector matches again with its own
		// catalog and replaces the findings.
		if cat, err := policies.Media(policies.FS()); err == nil {
			sn.Media = policies.MatchMedia(cat, sn.Media)
		}
	}
	pkgs := toolPackages(cat)
	sn.Posture, err = within(ctx, func(ctx context.Context) (*agentv1.Posture, error) { return posture.Collect(ctx, root, pkgs) })
	sn.Signals = append(sn.Signals, signalStatus("posture", err))
	if s.Activity != nil {
		sn.Activity = s.Activity()
	}
	sn.ScanFinishedAt = timestamppb.Now()
	return sn, nil
}

// within runs collect with ctx and returns its result, or ctx's cause as
// soon as ctx ends: a collector stuck where cancellation cannot reach it
// (a read from a hung file system) is left to finish on its own, and the
// scan goes on without it. A collector that returns after ctx ended (its
// commands killed at the deadline) may have read only part of the
// machine, so it gets an error too.
func within[T any](ctx context.Context, collect func(context.Context) (T, error)) (T, error) {
	var zero T
	if ctx.Err() != nil {
		return zero, context.Cause(ctx)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := collect(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if r.err == nil && ctx.Err() != nil {
			r.err = context.Cause(ctx)
		}
		return r.v, r.err
	case <-ctx.Done():
		return zero, context.Cause(ctx)
	}
}

// peripherals matches the USB devices and displays against the KVM
// catalog.
func (s *Scanner) peripherals(sn *agentv1.HostSnapshot) (*agentv1.Peripherals, *agentv1.SignalStatus) {
	cat := s.KVM
	if cat == nil {
		var err error
		if cat, err = policies.KVM(policies.FS()); err != nil {
			return nil, signalStatus("peripherals", fmt.Errorf("load catalog: %w", err))
		}
	}
	return policies.MatchPeripherals(cat, sn.GetUsb(), sn.GetDisplays()), signalStatus("peripherals", nil)
}

// adapters maps the catalog's VPN and tunnel tools to their adapter-name
// globs, for the network signal (none without a catalog).
func adapters(cat *policies.RemoteAccessCatalog) map[string][]string {
	out := map[string][]string{}
	for _, t := range cat.GetTools() {
		if len(t.Adapters) > 0 {
			out[t.ID] = t.Adapters
		}
	}
	return out
}

// toolPackages gives the posture signal the catalog tools' install names:
// Linux package names and Windows uninstall names (none without a
// catalog).
func toolPackages(cat *policies.RemoteAccessCatalog) posture.Tools {
	out := posture.Tools{Packages: map[string]string{}, Products: map[string][]string{}}
	for _, t := range cat.GetTools() {
		for _, p := range t.Linux.Packages {
			out.Packages[p] = t.ID
		}
		if len(t.Windows.UninstallNames) > 0 {
			out.Products[t.ID] = t.Windows.UninstallNames
		}
	}
	return out
}

// signalStatus turns a collection error into a signal family's status.
func signalStatus(name string, err error) *agentv1.SignalStatus {
	switch {
	case err == nil:
		return &agentv1.SignalStatus{Name: name, State: agentv1.SignalStatus_STATE_OK}
	case errors.Is(err, errors.ErrUnsupported):
		return &agentv1.SignalStatus{Name: name, State: agentv1.SignalStatus_STATE_UNSUPPORTED, Message: err.Error()}
	default:
		return &agentv1.SignalStatus{Name: name, State: agentv1.SignalStatus_STATE_ERROR, Message: err.Error()}
	}
}

// Digest is the hex SHA-256 of a snapshot's content without its scan times
// and activity counts, so an unchanged machine has an unchanged digest.
func Digest(sn *agentv1.HostSnapshot) string {
	c := proto.Clone(sn).(*agentv1.HostSnapshot)
	c.ScanStartedAt, c.ScanFinishedAt, c.Activity = nil, nil, nil
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Fingerprint is a cheap summary of what usually changes when someone
// plugs in a device, changes network or time zone: the host name, network
// interfaces and addresses, the USB device list, the display connectors'
// state (on Windows, of the live system: the present USB and monitor device
// nodes) and /etc/localtime. The
// agent polls it between full scans and scans at once when it changes.
func (s *Scanner) Fingerprint() string {
	var parts []string
	if h, err := os.Hostname(); err == nil {
		parts = append(parts, h)
	}
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			addrs, _ := i.Addrs()
			parts = append(parts, fmt.Sprint(i.Name, i.Flags, i.HardwareAddr, addrs))
		}
	}
	root := s.Root
	if root == "" {
		root = "/"
	}
	if ents, err := os.ReadDir(filepath.Join(root, "sys/bus/usb/devices")); err == nil {
		for _, e := range ents {
			parts = append(parts, e.Name())
		}
	}
	// Display connectors' status and whether they are lit (a monitor or an
	// IP-KVM's HDMI plugged in, the lid closed).
	conns, _ := filepath.Glob(filepath.Join(root, "sys/class/drm/card*-*"))
	for _, c := range conns {
		for _, attr := range []string{"status", "enabled"} {
			if b, err := os.ReadFile(filepath.Join(c, attr)); err == nil {
				parts = append(parts, filepath.Base(c)+" "+attr+" "+strings.TrimSpace(string(b)))
			}
		}
	}
	if root == "/" {
		// Windows: the present USB and monitor device nodes (nil elsewhere).
		parts = append(parts, usb.PresentDeviceIDs()...)
		parts = append(parts, display.PresentMonitorIDs()...)
	}
	if l, err := os.Readlink(filepath.Join(root, "etc/localtime")); err == nil {
		parts = append(parts, l)
	} else if st, err := os.Stat(filepath.Join(root, "etc/localtime")); err == nil {
		parts = append(parts, st.ModTime().Format(time.RFC3339Nano))
	} else if !errors.Is(err, fs.ErrNotExist) {
		parts = append(parts, err.Error())
	}
	sort.Strings(parts)
	sum := sha256.Sum256([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(sum[:])
}
