package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/bonafide-sec/bonafide/collector/internal/packaging"
)

// defaultAgentDir is where the collector's own deb/rpm installs the agent
// binaries `package` and the UI's enrollment page build from.
const defaultAgentDir = "/usr/share/bonafide/agents"

// agentDir is the directory of agent binaries: --agent-dir, else
// $BONAFIDE_AGENT_DIR, else the packaged collector's, else ./dist/agents
// (where `make installers` puts them).
func agentDir(flagValue string) string {
	if d := cmp.Or(flagValue, os.Getenv("BONAFIDE_AGENT_DIR")); d != "" {
		return d
	}
	if _, err := os.Stat(defaultAgentDir); err == nil {
		return defaultAgentDir
	}
	return filepath.Join("dist", "agents")
}

// packageCmd builds an agent installer, pre-configured like `fleetctl
// package` when given a collector and a secret, and prints its path.
func packageCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("package", stderr)
	var c common
	c.register(fs)
	var o packaging.Options
	var dir, out, self string
	fs.StringVar(&o.Type, "type", "", "package type: msi, pkg, deb or rpm")
	fs.StringVar(&o.Arch, "arch", "", "amd64 or arm64 (pkg: also universal, the default); default amd64")
	fs.StringVar(&dir, "agent-dir", "", "directory of agent binaries named bonafide-agent-<os>-<arch>[.exe] (default $BONAFIDE_AGENT_DIR, "+defaultAgentDir+" or dist/agents)")
	fs.StringVar(&o.Config.Collector, "collector", "", "host:port agents dial (the collector's gRPC address)")
	fs.StringVar(&o.Config.EnrollSecret, "secret", "", "enrollment secret to pre-configure (`secret create` makes one)")
	fs.StringVar(&o.Config.CAFingerprint, "ca-fingerprint", "", "CA certificate SHA-256 agents pin (default: the data dir's CA, when there is one)")
	fs.StringVar(&o.Version, "version", version, "agent version the package carries")
	fs.StringVar(&out, "out", "", "output file (default: the conventional name in the current directory)")
	fs.StringVar(&o.SignCert, "sign-cert", os.Getenv("SIGN_CERT"), "PEM certificate to Authenticode-sign the MSI and agent.exe with (default $SIGN_CERT)")
	fs.StringVar(&o.SignKey, "sign-key", os.Getenv("SIGN_KEY"), "PEM key of --sign-cert (default $SIGN_KEY)")
	fs.StringVar(&self, "collector-binary", "", "build the collector's own deb or rpm from this Linux binary instead, with the agent binaries of --agent-dir inside")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("package takes no arguments, got %q", fs.Args())
	}
	o.Arch = cmp.Or(o.Arch, map[bool]string{true: "universal", false: "amd64"}[o.Type == "pkg"])
	if o.Config.Collector != "" && o.Config.CAFingerprint == "" {
		if fp, err := caFingerprint(ctx, c); err == nil {
			o.Config.CAFingerprint = fp
		}
	}
	if self != "" {
		agents := agentDir(dir)
		if _, err := os.Stat(agents); err != nil {
			agents = ""
		}
		out = cmp.Or(out, packaging.CollectorFileName(o.Type, o.Arch, o.Version))
		if err := packaging.BuildCollector(o.Type, o.Arch, o.Version, self, agents, out); err != nil {
			return fmt.Errorf("package the collector: %w", err)
		}
		fmt.Fprintln(stdout, out)
		return nil
	}
	o, err := packaging.WithAgents(o, agentDir(dir))
	if err != nil {
		return err
	}
	out = cmp.Or(out, packaging.FileName(o))
	if err := packaging.Build(ctx, o, out); err != nil {
		return fmt.Errorf("package %s: %w", o.Type, err)
	}
	fmt.Fprintln(stdout, out)
	return nil
}
