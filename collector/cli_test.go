package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// cliResult is what a run of a built binary printed and whether it
// exited 0.
type cliResult struct {
	stdout, stderr string
	ok             bool
}

func runCLI(t *testing.T, bin string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if _, exit := err.(*exec.ExitError); err != nil && !exit {
		t.Fatal(err)
	}
	return cliResult{out.String(), errOut.String(), err == nil}
}

// TestCLIVersionAndHelp: every binary prints its version with --version
// as with `version`, and its help (help, -h, --help) on standard output,
// exiting 0, lists each command with what it does.
func TestCLIVersionAndHelp(t *testing.T) {
	agent, collector := binaries(t)
	sim := fleetsimBinary(t)
	for _, c := range []struct {
		bin      string
		commands []string // each listed with a description on its line
	}{
		{collector, []string{"serve", "secret create", "secret list", "secret revoke", "user list", "ca fingerprint", "device revoke",
			"people import", "policy check", "policy test", "version", "help"}},
		{agent, []string{"scan", "run", "version", "help"}},
		{sim, []string{"world", "run", "version", "help"}},
	} {
		name := filepath.Base(c.bin)
		v := runCLI(t, c.bin, "version")
		if !v.ok || strings.Count(v.stdout, "\n") != 1 || strings.TrimSpace(v.stdout) == "" {
			t.Errorf("%s version: %+v", name, v)
		}
		if got := runCLI(t, c.bin, "--version"); got != v {
			t.Errorf("%s --version: %+v, want %+v", name, got, v)
		}
		for _, help := range []string{"help", "-h", "--help"} {
			h := runCLI(t, c.bin, help)
			if !h.ok || h.stderr != "" {
				t.Errorf("%s %s: exit 0 with the help on stdout, got %+v", name, help, h)
				continue
			}
			for _, cmd := range c.commands {
				if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(cmd) + `\b.*\s{2,}[a-z]+ `).MatchString(h.stdout) {
					t.Errorf("%s %s: no line for %q with a description:\n%s", name, help, cmd, h.stdout)
				}
			}
		}
	}
	// A command's own help says what it does, then its flags.
	h := runCLI(t, collector, "help", "secret", "list")
	if !h.ok || !strings.Contains(h.stdout, "usage: bonafide-collector secret list\n\nlist enrollment secrets\n") || !strings.Contains(h.stdout, "-data-dir") {
		t.Errorf("help secret list: %+v", h)
	}
	h = runCLI(t, collector, "serve", "-h")
	if h.ok || !strings.HasPrefix(h.stderr, "usage: bonafide-collector serve\n\nrun the collector") || !strings.Contains(h.stderr, "-policies") {
		t.Errorf("serve -h: %+v", h)
	}
	h = runCLI(t, agent, "scan", "-h")
	if h.ok || !strings.HasPrefix(h.stderr, "usage: bonafide-agent scan [flags]\n\nScan this machine once") || !strings.Contains(h.stderr, "-json") {
		t.Errorf("agent scan -h: %+v", h)
	}
	h = runCLI(t, collector, "token", "create", "-h")
	if !strings.Contains(h.stderr, "usage: bonafide-collector token create --role R [--name N]\n\ncreate an API token (admin, analyst or viewer)\n") {
		t.Errorf("token create -h: %+v", h)
	}
}

// TestCLIClearErrors: a missing policy directory, a data dir that does
// not exist and an agent pointed at the collector's HTTP port each fail
// with one line saying so, and nothing is created on the way.
func TestCLIClearErrors(t *testing.T) {
	agent, collector := binaries(t)
	missing := filepath.Join(t.TempDir(), "missing")
	oneLine := func(what string, r cliResult, want string) {
		t.Helper()
		if r.ok || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: ok=%v stdout %q stderr %q: want a failure with one line saying %q", what, r.ok, r.stdout, r.stderr, want)
		}
	}

	oneLine("serve --policies /nonexistent", runCLI(t, collector, "serve", "--policies", "/nonexistent", "--data-dir", missing,
		"--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"), "bonafide-collector: policy directory /nonexistent does not exist")
	oneLine("policy check /nonexistent", runCLI(t, collector, "policy", "check", "/nonexistent"), "policy directory /nonexistent does not exist")
	oneLine("policy test on a file", runCLI(t, collector, "policy", "test", "/etc/hostname"), "policy directory /etc/hostname is not a directory")

	for _, args := range [][]string{{"secret", "list"}, {"user", "list"}, {"secret", "revoke", "x"}, {"device", "revoke", "x"}} {
		oneLine(strings.Join(args, " ")+" on a missing data dir", runCLI(t, collector, append(args, "--data-dir", missing)...),
			"no collector database: "+filepath.Join(missing, "bonafide.db")+" does not exist")
	}
	oneLine("ca fingerprint on a missing data dir", runCLI(t, collector, "ca", "fingerprint", "--data-dir", missing), "has `serve` run on this data dir?")
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("a failed command created the data dir %s (%v)", missing, err)
	}

	// An agent given the HTTP port instead of the gRPC port.
	s := startServer(t, collector, t.TempDir(), "", "127.0.0.1:0")
	secret := s.admin(t, "secret", "create")
	const hint = " answered plain HTTP: is this the collector's HTTP port? agents use its gRPC port"
	state := t.TempDir()
	oneLine("enroll at the HTTP port", runCLI(t, agent, "enroll", "--collector", s.http, "--secret", secret, "--state-dir", state),
		"bonafide-agent: enroll: "+s.http+hint)
	// Enrolled through the gRPC port, then configured with the HTTP port:
	// the delivery error says the same.
	runAgent(t, agent, "enroll", "--collector", s.grpc, "--secret", secret, "--state-dir", state)
	cfg := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(cfg, []byte("collector: "+s.http+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, agent, "run", "--once", "--config", cfg, "--state-dir", state, "--root", t.TempDir())
	if r.ok || !strings.Contains(r.stderr, s.http+hint) {
		t.Errorf("run --once at the HTTP port: ok=%v, stderr %s", r.ok, r.stderr)
	}
}
