package packaging

// Linux packages: deb and rpm, written in-process by the nfpm library
// (github.com/goreleaser/nfpm/v2, pinned at v2.45.2: later versions pull
// modules the proxy refuses). The files that go in — systemd units,
// maintainer scripts, sample configuration — live in installers/linux and
// installers/collector and are embedded (package installers), so
// `bonafide-collector package` needs no source tree.

import (
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/bonafide-sec/bonafide/installers"
	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"
)

// Package metadata shared by the agent's and the collector's packages.
// The repository has no licence file yet; "Proprietary" says so honestly
// until it does.
const (
	linuxMaintainer = "bonafide-sec <bonafide-sec@users.noreply.github.com>"
	linuxVendor     = "bonafide-sec"
	linuxHomepage   = "https://github.com/bonafide-sec/bonafide"
	linuxLicense    = "Proprietary"
)

// Paths on the target system.
const (
	agentConfigPath   = "/etc/bonafide/agent.yaml"
	collectorEnvPath  = "/etc/bonafide/collector.env"
	debSystemdUnitDir = "/lib/systemd/system"
	rpmSystemdUnitDir = "/usr/lib/systemd/system"
)

const agentDescription = `bonafide agent: reports signs of a laptop farm to the bonafide collector
The agent runs as a systemd service and reports remote-access software,
USB/HID devices and displays (EDID), network position, time zone and input
languages, login sessions and active hours. It never reads documents,
keystrokes or screen contents.`

const collectorDescription = `bonafide collector: enrollment, detection, web UI and API for bonafide agents
The collector enrolls bonafide agents, receives their reports over mutually
authenticated gRPC, stores them (SQLite, or PostgreSQL to scale out),
evaluates the detection policies per device and across the fleet, and serves
the web UI and JSON API for triage.`

// buildNFPM writes the agent's deb or rpm (o.Type) for o.Arch to out. With
// o.Config set the package ships /etc/bonafide/agent.yaml (0600, a
// configuration file an upgrade does not overwrite once edited) and the
// agent enrolls when the package installs; without it, it ships a commented
// /etc/bonafide/agent.yaml.sample and the service waits for a configuration.
func buildNFPM(o Options, out string) error {
	unitDir, err := linuxFormat(o.Type)
	if err != nil {
		return err
	}
	if err := checkLinuxBinary(o.Agent, o.Arch); err != nil {
		return err
	}
	version, err := linuxVersion(o.Version)
	if err != nil {
		return err
	}
	conf, err := agentYAML(o.Config, "# bonafide agent configuration, written by a pre-configured bonafide-agent\n"+
		"# package. /etc/bonafide/agent.yaml is a configuration file: an upgrade keeps\n"+
		"# local edits. Other keys: state_dir, scan_interval, heartbeat_interval,\n"+
		"# source_address, spool_max_bytes, ca_file (see installers/linux/README.md).\n\n")
	if err != nil {
		return err
	}

	tmp, err := os.MkdirTemp("", "bonafide-nfpm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	staged, err := stageLinux(installers.Linux, tmp,
		"linux/bonafide-agent.service", "linux/agent.yaml.sample",
		"linux/scripts/postinstall.sh", "linux/scripts/preremove.sh", "linux/scripts/postremove.sh")
	if err != nil {
		return err
	}

	contents := files.Contents{
		{Source: o.Agent, Destination: "/usr/bin/bonafide-agent", FileInfo: &files.ContentFileInfo{Mode: 0o755}},
		{Source: staged["bonafide-agent.service"], Destination: unitDir + "/bonafide-agent.service", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		// Owned, so that rpm removes it once empty (the collector's package
		// owns it too).
		{Destination: "/etc/bonafide", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
	}
	if conf != nil {
		p := filepath.Join(tmp, "agent.yaml")
		if err := os.WriteFile(p, conf, 0o600); err != nil {
			return err
		}
		contents = append(contents, &files.Content{Source: p, Destination: agentConfigPath,
			Type: files.TypeConfigNoReplace, FileInfo: &files.ContentFileInfo{Mode: 0o600}})
	} else {
		contents = append(contents, &files.Content{Source: staged["agent.yaml.sample"], Destination: agentConfigPath + ".sample",
			Type: files.TypeConfigNoReplace, FileInfo: &files.ContentFileInfo{Mode: 0o644}})
	}

	info := linuxInfo("bonafide-agent", o.Arch, version, agentDescription)
	info.Contents = contents
	info.Scripts = nfpm.Scripts{
		PostInstall: staged["postinstall.sh"],
		PreRemove:   staged["preremove.sh"],
		PostRemove:  staged["postremove.sh"],
	}
	return writeNFPM(o.Type, info, out)
}

// CollectorFileName is the conventional name of the collector's package,
// e.g. bonafide-collector_1.2.3_amd64.deb.
func CollectorFileName(typ, arch, version string) string {
	switch typ {
	case "deb":
		return fmt.Sprintf("bonafide-collector_%s_%s.deb", version, arch)
	case "rpm":
		return fmt.Sprintf("bonafide-collector-%s-1.%s.rpm", version, rpmArch(arch))
	}
	return "bonafide-collector." + typ
}

// BuildCollector writes the collector's own deb or rpm (typ) for arch to
// out: binary as /usr/bin/bonafide-collector, a hardened systemd unit that
// runs `serve` as the bonafide system user with its data in
// /var/lib/bonafide-collector, and /etc/bonafide/collector.env for the
// serve flags. version is normalised as for the agent's package. The
// agent binaries in agentDir (named as AgentBinary says; none when
// agentDir is "") go to /usr/share/bonafide/agents, from which the
// installed collector builds agent packages (`package`, the UI).
func BuildCollector(typ, arch, version, binary, agentDir, out string) error {
	unitDir, err := linuxFormat(typ)
	if err != nil {
		return err
	}
	if err := checkLinuxBinary(binary, arch); err != nil {
		return err
	}
	v, err := linuxVersion(version)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "bonafide-nfpm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	staged, err := stageLinux(installers.Collector, tmp,
		"collector/bonafide-collector.service", "collector/collector.env",
		"collector/scripts/preinstall.sh", "collector/scripts/postinstall.sh",
		"collector/scripts/preremove.sh", "collector/scripts/postremove.sh")
	if err != nil {
		return err
	}
	info := linuxInfo("bonafide-collector", arch, v, collectorDescription)
	info.Contents = files.Contents{
		{Source: binary, Destination: "/usr/bin/bonafide-collector", FileInfo: &files.ContentFileInfo{Mode: 0o755}},
		{Source: staged["bonafide-collector.service"], Destination: unitDir + "/bonafide-collector.service", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		{Destination: "/etc/bonafide", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
		// 0600: a --db URL in it may hold a password; systemd reads it as root.
		{Source: staged["collector.env"], Destination: collectorEnvPath, Type: files.TypeConfigNoReplace, FileInfo: &files.ContentFileInfo{Mode: 0o600}},
	}
	if agentDir != "" {
		agents, err := filepath.Glob(filepath.Join(agentDir, "bonafide-agent-*"))
		if err != nil {
			return err
		}
		for _, a := range agents {
			info.Contents = append(info.Contents, &files.Content{Source: a, Destination: "/usr/share/bonafide/agents/" + filepath.Base(a),
				FileInfo: &files.ContentFileInfo{Mode: 0o755}})
		}
	}
	info.Scripts = nfpm.Scripts{
		PreInstall:  staged["preinstall.sh"],
		PostInstall: staged["postinstall.sh"],
		PreRemove:   staged["preremove.sh"],
		PostRemove:  staged["postremove.sh"],
	}
	return writeNFPM(typ, info, out)
}

// linuxFormat checks the package type and returns where its systemd units
// go: Debian's packaging still uses /lib (a symlink to /usr/lib on merged-/usr
// systems), RPM distributions use /usr/lib.
func linuxFormat(typ string) (unitDir string, err error) {
	switch typ {
	case "deb":
		return debSystemdUnitDir, nil
	case "rpm":
		return rpmSystemdUnitDir, nil
	}
	return "", fmt.Errorf("%w: type %q is not deb or rpm", ErrUnsupported, typ)
}

// linuxInfo is the package metadata common to both packages.
func linuxInfo(name, goarch, version, description string) *nfpm.Info {
	info := &nfpm.Info{
		Name:     name,
		Arch:     goarch, // amd64 and arm64 are also Debian's names
		Platform: "linux",
		Version:  version,
		// The version is already normalised (linuxVersion): nfpm must not
		// re-split it as semver.
		VersionSchema:   "none",
		Section:         "admin",
		Priority:        "optional",
		Maintainer:      linuxMaintainer,
		Description:     description,
		Vendor:          linuxVendor,
		Homepage:        linuxHomepage,
		License:         linuxLicense,
		DisableGlobbing: true,
	}
	info.RPM.Arch = rpmArch(goarch)
	info.RPM.Summary = strings.SplitN(description, "\n", 2)[0]
	info.RPM.Group = "Applications/System"
	// A fixed build host keeps the rpm independent of the machine that
	// built it (rpm -qi shows it).
	info.RPM.BuildHost = "localhost"
	// Platform, umask and SOURCE_DATE_EPOCH as the modification time.
	return nfpm.WithDefaults(info)
}

// writeNFPM writes the package to out through a temporary file, so that a
// failed build leaves no partial package behind.
func writeNFPM(typ string, info *nfpm.Info, out string) error {
	var p nfpm.Packager = deb.Default
	if typ == "rpm" {
		p = rpm.DefaultRPM
	}
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return fmt.Errorf("%s: %w", typ, err)
	}
	defer os.Remove(f.Name())
	if err := p.Package(info, f); err != nil {
		f.Close()
		return fmt.Errorf("build %s %s: %w", info.Name, typ, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), out)
}

// stageLinux copies embedded files into dir (nfpm reads sources from disk) and
// returns their paths by base name.
func stageLinux(fsys fs.FS, dir string, names ...string) (map[string]string, error) {
	paths := make(map[string]string, len(names))
	for _, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("embedded %s: %w", name, err)
		}
		p := filepath.Join(dir, path.Base(name))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, err
		}
		paths[path.Base(name)] = p
	}
	return paths, nil
}

// checkLinuxBinary makes sure the binary to package is a Linux ELF
// executable for goarch, so that a darwin build or the wrong architecture is
// caught here and not on the laptop.
func checkLinuxBinary(file, goarch string) error {
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[goarch]
	if want == elf.EM_NONE {
		return fmt.Errorf("%w: architecture %q (deb and rpm: amd64 or arm64)", ErrUnsupported, goarch)
	}
	f, err := elf.Open(file)
	if err != nil {
		return fmt.Errorf("binary %s: not a Linux executable: %w", file, err)
	}
	defer f.Close()
	if f.Machine != want || f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("binary %s is a %s %s, not an %s executable", file, f.Machine, f.Type, goarch)
	}
	return nil
}

var (
	// linuxReleaseVersion is a release: numbers with an optional suffix, as
	// `git describe` and tags write them (1.2.3, v1.2.3-rc.1).
	linuxReleaseVersion = regexp.MustCompile(`(?s)^v?([0-9]+(?:\.[0-9]+)*)(?:[-~+](.+))?$`)
	// linuxGitDistance is git describe's "commits since the tag" suffix.
	linuxGitDistance = regexp.MustCompile(`^([0-9]+)-g([0-9a-f]+)(-dirty)?$`)
	// linuxUnsafeVersionChars are replaced by dots: deb and rpm versions allow
	// only letters, digits and . + ~ (rpm: no '-').
	linuxUnsafeVersionChars = regexp.MustCompile(`[^A-Za-z0-9.]+`)
)

// linuxVersion turns the agent's version into one that deb and rpm accept
// and order correctly:
//
//	1.2.3, v1.2.3          → 1.2.3
//	1.2.3-rc.1             → 1.2.3~rc.1        (before 1.2.3)
//	1.2.3-4-gabc123[-dirty] → 1.2.3+git4.gabc123[.dirty] (after 1.2.3)
//	dev, "", abc1234       → 0.0.0~dev, 0.0.0~abc1234 (before any release)
//
// '~' sorts before the empty string in both dpkg and rpm, so a release
// always upgrades a development build.
func linuxVersion(v string) (string, error) {
	if len(v) > 128 {
		return "", fmt.Errorf("version %.20q...: longer than 128 bytes", v)
	}
	m := linuxReleaseVersion.FindStringSubmatch(v)
	if m == nil {
		s := strings.Trim(linuxUnsafeVersionChars.ReplaceAllString(v, "."), ".")
		if s == "" {
			s = "dev"
		}
		return "0.0.0~" + s, nil
	}
	base, suffix := m[1], m[2]
	if suffix == "" {
		return base, nil
	}
	if g := linuxGitDistance.FindStringSubmatch(suffix); g != nil {
		out := base + "+git" + g[1] + ".g" + g[2]
		if g[3] != "" {
			out += ".dirty"
		}
		return out, nil
	}
	s := strings.Trim(linuxUnsafeVersionChars.ReplaceAllString(suffix, "."), ".")
	if s == "" {
		return base, nil
	}
	return base + "~" + s, nil
}
