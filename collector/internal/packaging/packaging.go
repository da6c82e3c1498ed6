// Package packaging builds the agent's installers on Linux: MSI (wixl),
// macOS pkg (our own xar, Bom and cpio writers, package macpkg), and deb
// and rpm (nfpm). The same code serves `make installers` and
// `bonafide-collector package`, which pre-configures a package with a
// collector address, enrollment secret and CA fingerprint, like
// `fleetctl package`.
package packaging

import (
	"errors"
	"fmt"
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
