// Package scan runs one look at the machine and assembles the HostSnapshot
// the agent reports. Each signal family is collected by its own package; a
// family that fails is recorded in the snapshot's signal statuses and does
// not stop the others.
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
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Scanner collects snapshots of the machine whose filesystem root is Root.
type Scanner struct {
	Root    string
	Version string
	// AgentID is set once the agent is enrolled.
	AgentID string
}

// Scan collects one snapshot.
func (s *Scanner) Scan(ctx context.Context) (*agentv1.HostSnapshot, error) {
	sn := &agentv1.HostSnapshot{ScanStartedAt: timestamppb.Now()}
	id, err := hostid.Collect(ctx, s.Root)
	if err != nil {
		return nil, fmt.Errorf("host identity: %w", err)
	}
	id.AgentId, id.AgentVersion = s.AgentID, s.Version
	sn.Identity = id
	sn.Signals = append(sn.Signals, &agentv1.SignalStatus{Name: "identity", State: agentv1.SignalStatus_STATE_OK})
	sn.ScanFinishedAt = timestamppb.Now()
	return sn, nil
}

// Digest is the hex SHA-256 of a snapshot's content without its scan times,
// so an unchanged machine has an unchanged digest.
func Digest(sn *agentv1.HostSnapshot) string {
	c := proto.Clone(sn).(*agentv1.HostSnapshot)
	c.ScanStartedAt, c.ScanFinishedAt = nil, nil
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Fingerprint is a cheap summary of what usually changes when someone
// plugs in a device, changes network or time zone: the host name, network
// interfaces and addresses, the USB device list and /etc/localtime. The
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
