package ui

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bonafide-sec/bonafide/collector/internal/packaging"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
)

// enrollPage is the enrollment page's data.
type enrollPage struct {
	Secrets       []store.Secret
	Collector     string
	CAFingerprint string
	IsAdmin       bool
	Now           time.Time // for the secrets' states
	// New is the secret just created, shown once (never stored in plain).
	New *newSecret
}

type newSecret struct {
	Secret   store.Secret
	Plain    string
	Commands []installCommand
}

// installCommand is how to install a pre-configured agent on one OS.
type installCommand struct {
	ID         string // for the copy button
	OS         string
	Type, Arch string // the package, which the page offers to download
	File       string // the package's file name
	Command    string
}

// enrollment lists the enrollment secrets (every role: names and use
// counts are not secret) with the collector's address and CA fingerprint;
// administrators create and revoke secrets.
func (s *Server) enrollment(w http.ResponseWriter, r *http.Request, sess accounts.Session) error {
	p, err := s.enrollData(r, sess)
	if err != nil {
		return err
	}
	return s.render(w, r, http.StatusOK, "enrollment", "Enrollment", p)
}

func (s *Server) enrollData(r *http.Request, sess accounts.Session) (*enrollPage, error) {
	list, err := s.store.ListSecrets(r.Context())
	if err != nil {
		return nil, err
	}
	return &enrollPage{Secrets: list, Collector: s.opts.Collector, CAFingerprint: s.opts.CAFingerprint, IsAdmin: adminRole(sess), Now: time.Now()}, nil
}

// createSecret makes an enrollment secret and shows it, with the install
// commands that use it, in the response to the POST only: the store
// keeps its hash, so a reload cannot show it again.
func (s *Server) createSecret(w http.ResponseWriter, r *http.Request, sess accounts.Session) error {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if name == "" || utf8.RuneCountInString(name) > 100 || strings.ContainsFunc(name, isControl) {
		return fmt.Errorf("name the secret (at most 100 characters, one line): %w", store.ErrInvalid)
	}
	plain, sec, err := s.store.CreateSecret(r.Context(), name)
	if err != nil {
		return err
	}
	s.log.Info("ui enrollment secret created", "secret", sec.ID, "name", name, "user", sess.User.Username)
	p, err := s.enrollData(r, sess)
	if err != nil {
		return err
	}
	p.New = &newSecret{Secret: sec, Plain: plain, Commands: installCommands(s.opts.Collector, plain, s.opts.CAFingerprint, s.opts.Version)}
	return s.render(w, r, http.StatusOK, "enrollment", "Enrollment", p)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// revokeSecret stops a secret from enrolling new agents (enrolled agents
// keep their certificates).
func (s *Server) revokeSecret(w http.ResponseWriter, r *http.Request, sess accounts.Session) error {
	id := r.PathValue("id")
	if err := s.store.RevokeSecret(r.Context(), id); err != nil {
		return err
	}
	s.log.Info("ui enrollment secret revoked", "secret", id, "user", sess.User.Username)
	http.Redirect(w, r, "/ui/enrollment?"+url.Values{"done": {"Secret " + id + " revoked."}}.Encode(), http.StatusSeeOther)
	return nil
}

// downloadPackage builds an agent package pre-configured with the
// collector's address, CA fingerprint and an active enrollment secret
// (the one just created: the form carries it back) from the agent
// binaries in Options.AgentDir, and sends it as a download.
func (s *Server) downloadPackage(w http.ResponseWriter, r *http.Request, sess accounts.Session) error {
	secret := r.PostFormValue("secret")
	sec, err := s.store.MatchSecret(r.Context(), secret)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("that secret is not an active enrollment secret: %w", store.ErrInvalid)
	} else if err != nil {
		return err
	}
	o := packaging.Options{Type: r.PostFormValue("type"), Arch: r.PostFormValue("arch"), Version: s.opts.Version,
		Config: packaging.Config{Collector: s.opts.Collector, EnrollSecret: secret, CAFingerprint: s.opts.CAFingerprint}}
	if !slices.Contains(packaging.Types, o.Type) || !slices.Contains([]string{"amd64", "arm64", "universal"}, o.Arch) {
		return fmt.Errorf("no such package: %w", store.ErrInvalid)
	}
	if o, err = packaging.WithAgents(o, s.opts.AgentDir); err != nil {
		return fmt.Errorf("%v: %w", err, store.ErrInvalid)
	}
	dir, err := os.MkdirTemp("", "bonafide-package-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, packaging.FileName(o))
	if err := packaging.Build(r.Context(), o, out); err != nil {
		return fmt.Errorf("build the %s: %v: %w", o.Type, err, store.ErrInvalid)
	}
	f, err := os.Open(out)
	if err != nil {
		return err
	}
	defer f.Close()
	s.log.Info("ui agent package", "type", o.Type, "arch", o.Arch, "secret", sec.ID, "user", sess.User.Username)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filepath.Base(out)}))
	_, err = io.Copy(w, f)
	return err
}

// installCommands are the copy-paste commands that install the agent
// pre-configured with the collector's address, an enrollment secret and
// the CA fingerprint: the contract shared with the installers (MSI
// properties COLLECTOR, ENROLL_SECRET and CA_FINGERPRINT; agent.yaml
// written before the pkg, deb or rpm installs, which then enrolls). The
// packages' names are packaging.FileName's for version: amd64 for MSI,
// deb and rpm, universal for pkg. Values are quoted for their shell: POSIX
// single quotes, and msiexec's double quotes (a quote doubled inside).
func installCommands(collector, secret, caFingerprint, version string) []installCommand {
	file := func(typ, arch string) string {
		return packaging.FileName(packaging.Options{Type: typ, Arch: arch, Version: version})
	}
	agentYAML := func(dir string) string {
		return "sudo mkdir -p " + shellWord(dir) +
			` && printf 'collector: %s\nenroll_secret: %s\nca_fingerprint: %s\n' ` +
			shellQuote(collector) + " " + shellQuote(secret) + " " + shellQuote(caFingerprint) +
			" | sudo tee " + shellWord(dir+"/agent.yaml") + " >/dev/null"
	}
	msi, pkg, deb, rpm := file("msi", "amd64"), file("pkg", "universal"), file("deb", "amd64"), file("rpm", "amd64")
	return []installCommand{
		{ID: "cmd-msi", OS: "Windows (MSI, run as administrator)", Type: "msi", Arch: "amd64", File: msi,
			Command: "msiexec /i " + msiWord(msi) + " COLLECTOR=" + msiQuote(collector) + " ENROLL_SECRET=" + msiQuote(secret) +
				" CA_FINGERPRINT=" + msiQuote(caFingerprint) + " /qn"},
		{ID: "cmd-pkg", OS: "macOS (pkg)", Type: "pkg", Arch: "universal", File: pkg,
			Command: agentYAML("/Library/Application Support/Bonafide") + " && sudo installer -pkg " + shellWord(pkg) + " -target /"},
		{ID: "cmd-deb", OS: "Debian, Ubuntu (deb)", Type: "deb", Arch: "amd64", File: deb,
			Command: agentYAML("/etc/bonafide") + " && sudo apt-get install ./" + shellWord(deb)},
		{ID: "cmd-rpm", OS: "Fedora, RHEL (rpm)", Type: "rpm", Arch: "amd64", File: rpm,
			Command: agentYAML("/etc/bonafide") + " && sudo dnf install ./" + shellWord(rpm)},
	}
}

// shellQuote quotes s for a POSIX shell. In single quotes nothing is
// special but the single quote itself, written by closing the quotes,
// adding a backslash-escaped quote and reopening them:
//
//	it's → 'it'\''s'
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// plainWord says whether s is made of characters no shell treats
// specially: letters, digits, . _ + - and /.
func plainWord(s string) bool {
	return s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-/") == ""
}

// shellWord leaves a plain word (a package's file name) as it is and
// quotes anything else for a POSIX shell.
func shellWord(s string) string {
	if plainWord(s) {
		return s
	}
	return shellQuote(s)
}

// msiWord is shellWord for msiexec's command line.
func msiWord(s string) string {
	if plainWord(s) {
		return s
	}
	return msiQuote(s)
}

// msiQuote quotes a value on msiexec's command line: in double quotes,
// a double quote inside doubled (as Windows Installer reads property
// values).
func msiQuote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
