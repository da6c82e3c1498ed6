package packaging

// The macOS package: a product archive written by package macpkg (pure Go,
// no xar or mkbom needed) from the files in installers/darwin. It installs
//
//	/usr/local/bin/bonafide-agent                     0755 (universal for Arch "universal")
//	/Library/LaunchDaemons/com.bonafide.agent.plist   0644 root:wheel
//	/usr/local/share/bonafide/uninstall.sh            0755
//
// and its postinstall writes /Library/Application Support/Bonafide/agent.yaml
// (0600) from the agent.yaml a pre-configured package carries in its
// Scripts, or from an MDM profile's managed preferences, then bootstraps the
// LaunchDaemon. See installers/darwin/README.md.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/bonafide-sec/bonafide/collector/internal/packaging/macpkg"
	"github.com/bonafide-sec/bonafide/installers"
)

const (
	// pkgIdentifier is the macOS package identifier and the LaunchDaemon's
	// label: `pkgutil --pkg-info com.bonafide.agent`.
	pkgIdentifier = "com.bonafide.agent"
	// pkgMinOS is the oldest macOS the Go toolchain supports (Go 1.25+:
	// macOS 12 Monterey).
	pkgMinOS = "12.0"
)

var (
	// pkgVersionChars are what a version may hold: it is shown by pkgutil
	// and compared by Installer.
	pkgVersionChars = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~-]*$`)
)

// buildPkg writes the agent's macOS package for o to out.
func buildPkg(o Options, out string) error {
	agent, hostArch, err := pkgAgentBinary(o)
	if err != nil {
		return err
	}
	version, err := pkgVersion(o.Version)
	if err != nil {
		return err
	}
	read := func(name string) ([]byte, error) {
		b, err := fs.ReadFile(installers.Darwin, "darwin/"+name)
		if err != nil {
			return nil, fmt.Errorf("pkg: embedded %s: %w", name, err)
		}
		return b, nil
	}
	files := map[string][]byte{}
	for _, name := range []string{"com.bonafide.agent.plist", "preinstall", "postinstall", "uninstall.sh"} {
		if files[name], err = read(name); err != nil {
			return err
		}
	}
	p := macpkg.Package{
		Identifier:        pkgIdentifier,
		Version:           version,
		Title:             "bonafide agent",
		HostArchitectures: hostArch,
		MinOSVersion:      pkgMinOS,
		Files: []macpkg.File{
			{Path: "usr/local/bin/bonafide-agent", Mode: 0o755, Data: agent},
			{Path: "Library/LaunchDaemons/" + pkgIdentifier + ".plist", Mode: 0o644, Data: files["com.bonafide.agent.plist"]},
			{Path: "usr/local/share/bonafide/uninstall.sh", Mode: 0o755, Data: files["uninstall.sh"]},
		},
		Scripts: []macpkg.File{
			{Path: "preinstall", Mode: 0o755, Data: files["preinstall"]},
			{Path: "postinstall", Mode: 0o755, Data: files["postinstall"]},
		},
	}
	conf, err := agentYAML(o.Config, "# bonafide agent configuration, from a pre-configured bonafide-agent package.\n"+
		"# The package installs it only where no agent.yaml exists yet. Other keys:\n"+
		"# state_dir, scan_interval, heartbeat_interval, source_address, spool_max_bytes,\n"+
		"# ca_file (see installers/darwin/README.md).\n")
	if err != nil {
		return err
	}
	if conf != nil {
		// postinstall copies it to agent.yaml, mode 0600, when there is none.
		p.Scripts = append(p.Scripts, macpkg.File{Path: "agent.yaml", Mode: 0o600, Data: conf})
	}
	var b bytes.Buffer
	if err := macpkg.Write(&b, p); err != nil {
		return err
	}
	return writePkgFile(out, b.Bytes())
}

// pkgAgentBinary reads the agent for o.Arch, checks that it is a darwin
// executable for that architecture, and returns it with the Installer
// host architectures it runs on. "universal" joins o.Agent (amd64) and
// o.AgentARM64 (arm64) into one universal binary.
func pkgAgentBinary(o Options) ([]byte, []string, error) {
	switch o.Arch {
	case "amd64", "arm64":
		b, err := readDarwinBinary(o.Agent, o.Arch)
		if err != nil {
			return nil, nil, err
		}
		return b, []string{pkgHostArch(o.Arch)}, nil
	case "universal":
		if o.AgentARM64 == "" {
			return nil, nil, errors.New("pkg: a universal package needs the arm64 agent too (AgentARM64)")
		}
		amd, err := readDarwinBinary(o.Agent, "amd64")
		if err != nil {
			return nil, nil, err
		}
		arm, err := readDarwinBinary(o.AgentARM64, "arm64")
		if err != nil {
			return nil, nil, err
		}
		fat, err := macpkg.Lipo(amd, arm)
		if err != nil {
			return nil, nil, fmt.Errorf("pkg: %w", err)
		}
		return fat, []string{"arm64", "x86_64"}, nil
	}
	return nil, nil, fmt.Errorf("%w: pkg architecture %q (amd64, arm64 or universal)", ErrUnsupported, o.Arch)
}

func pkgHostArch(goarch string) string {
	if goarch == "amd64" {
		return "x86_64"
	}
	return goarch
}

// readDarwinBinary reads file and makes sure it is a macOS executable for
// goarch, so that a Linux build or the wrong architecture is caught here
// and not on the Mac.
func readDarwinBinary(file, goarch string) ([]byte, error) {
	if file == "" {
		return nil, fmt.Errorf("pkg: no %s agent binary given", goarch)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("pkg: %w", err)
	}
	want := map[string]uint32{"amd64": macpkg.CPUTypeX86_64, "arm64": macpkg.CPUTypeARM64}[goarch]
	cpu, _, err := macpkg.MachCPU(b)
	if err != nil {
		return nil, fmt.Errorf("pkg: binary %s: %w (build it with GOOS=darwin)", file, err)
	}
	if cpu != want {
		return nil, fmt.Errorf("pkg: binary %s is for CPU type %#x, not %s", file, cpu, goarch)
	}
	return b, nil
}

// pkgVersion checks the agent's version for the package: a leading "v" of
// a tag is dropped (v1.2.3 → 1.2.3); no version means a development build.
func pkgVersion(v string) (string, error) {
	if v == "" {
		return "0.0.0", nil
	}
	if len(v) > 1 && v[0] == 'v' && v[1] >= '0' && v[1] <= '9' {
		v = v[1:]
	}
	if len(v) > 128 || !pkgVersionChars.MatchString(v) {
		return "", fmt.Errorf("pkg: version %.40q: letters, digits and . _ + ~ - only, at most 128", v)
	}
	return v, nil
}

// writePkgFile writes the package next to out and renames it into place,
// so that out is never a half-written package.
func writePkgFile(out string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(out), ".bonafide-pkg-*")
	if err != nil {
		return fmt.Errorf("pkg: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("pkg: write %s: %w", out, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("pkg: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pkg: write %s: %w", out, err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("pkg: %w", err)
	}
	return nil
}
