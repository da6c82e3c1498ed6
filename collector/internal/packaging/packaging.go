// Package packaging builds the agent's installers on Linux: MSI (wixl),
// macOS pkg (our own xar, Bom and cpio writers, package macpkg), and deb
// and rpm (nfpm). The same code serves `make installers` and
// `bonafide-collector package`, which pre-configures a package with a
// collector address, enrollment secret and CA fingerprint, like
// `fleetctl package`.
package packaging

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Types are the package types Build makes.
var Types = []string{"msi", "pkg", "deb", "rpm"}

// Config is what a pre-configured package writes into the agent's
// configuration at install time. All empty: the package installs the
// agent unconfigured, and IT supplies the configuration (MSI properties,
// a managed-preferences profile, /etc/bonafide/agent.yaml).
type Config struct {
	Collector     string // host:port of the collector's gRPC listener
	EnrollSecret  string
	CAFingerprint string // SHA-256 of the CA certificate, hex
}

// Options say what to build.
type Options struct {
	Type    string // msi, pkg, deb or rpm
	Arch    string // GOARCH: amd64 or arm64 (pkg: "universal" too)
	Version string // the agent's version, e.g. 1.2.3
	// Agent is the path of the agent binary for the target OS and
	// architecture (for a universal pkg, see AgentARM64).
	Agent      string
	AgentARM64 string
	Config     Config
	// SignCert and SignKey are a PEM certificate and key; when set, the
	// MSI and the Windows executable in it are Authenticode-signed with
	// osslsigncode.
	SignCert, SignKey string
}

// ErrUnsupported is returned for a type or architecture Build cannot make.
var ErrUnsupported = errors.New("unsupported package")

// Build makes the package o describes at the path out.
func Build(ctx context.Context, o Options, out string) error {
	switch o.Type {
	case "msi":
		return buildMSI(ctx, o, out)
	case "pkg":
		return buildPkg(o, out)
	case "deb", "rpm":
		return buildNFPM(o, out)
	}
	return fmt.Errorf("%w type %q (want msi, pkg, deb or rpm)", ErrUnsupported, o.Type)
}

// AgentBinary is where an agent directory keeps the agent for goos and
// goarch: bonafide-agent-<goos>-<goarch>, with .exe for Windows (the
// names `make installers` gives them).
func AgentBinary(dir, goos, goarch string) string {
	name := "bonafide-agent-" + goos + "-" + goarch
	if goos == "windows" {
		name += ".exe"
	}
	return filepath.Join(dir, name)
}

// WithAgents fills o.Agent (and o.AgentARM64 for a universal pkg) from an
// agent directory laid out as AgentBinary says, checking they exist.
func WithAgents(o Options, dir string) (Options, error) {
	goos := map[string]string{"msi": "windows", "pkg": "darwin", "deb": "linux", "rpm": "linux"}[o.Type]
	if goos == "" {
		return o, fmt.Errorf("%w type %q (want msi, pkg, deb or rpm)", ErrUnsupported, o.Type)
	}
	if o.Arch == "universal" {
		o.Agent, o.AgentARM64 = AgentBinary(dir, goos, "amd64"), AgentBinary(dir, goos, "arm64")
	} else {
		o.Agent = AgentBinary(dir, goos, o.Arch)
	}
	for _, p := range []string{o.Agent, o.AgentARM64} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return o, fmt.Errorf("agent binary for %s: %w (build them with `make installers`, or point --agent-dir at a directory holding them)", o.Type, err)
		}
	}
	return o, nil
}

// FileName is the conventional name of the package Build makes for o,
// e.g. bonafide-agent_1.2.3_amd64.deb.
func FileName(o Options) string {
	switch o.Type {
	case "msi":
		return fmt.Sprintf("bonafide-agent-%s-%s.msi", o.Version, winArch(o.Arch))
	case "pkg":
		return fmt.Sprintf("bonafide-agent-%s-%s.pkg", o.Version, o.Arch)
	case "deb":
		return fmt.Sprintf("bonafide-agent_%s_%s.deb", o.Version, o.Arch)
	case "rpm":
		return fmt.Sprintf("bonafide-agent-%s-1.%s.rpm", o.Version, rpmArch(o.Arch))
	}
	return "bonafide-agent." + o.Type
}

func winArch(goarch string) string {
	if goarch == "amd64" {
		return "x64"
	}
	return goarch
}

func rpmArch(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return goarch
}
