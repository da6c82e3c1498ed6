// Package outputs delivers alert events and audit entries from the store's
// outbox to the tools a SOC already runs: signed webhooks, Slack and
// Microsoft Teams channels, syslog receivers (CEF or JSON, RFC 5424) and
// OCSF files or HTTP endpoints. Each output is delivered in order, with
// retries and exponential backoff, by one collector replica at a time; its
// place in the outbox is kept in the database, so a restart or a receiver
// outage loses nothing.
package outputs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"go.yaml.in/yaml/v3"
)

// Output types.
const (
	TypeWebhook = "webhook"
	TypeSlack   = "slack"
	TypeTeams   = "teams"
	TypeSyslog  = "syslog"
	TypeOCSF    = "ocsf"
)

// Limits of the configuration (it is outside input).
const (
	maxFileSize = 1 << 20
	maxOutputs  = 64
	maxRules    = 1000
	maxHeaders  = 32
	maxSecret   = 4096
	maxURL      = 2048
	maxString   = 1024
)

// Config is the outputs file: `outputs:` and its list.
type Config struct {
	Outputs []Output `yaml:"outputs"`
}

// Output is one configured output. Which keys it takes depends on its
// type; see validate.
type Output struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"`

	// Filters: only alerts of at least MinSeverity, of one of Rules
	// (path.Match patterns such as idp_*), and only the Events listed
	// (default new, reopened, status; audit adds the audit log).
	MinSeverity string   `yaml:"min_severity"`
	Rules       []string `yaml:"rules"`
	Events      []string `yaml:"events"`

	// webhook, slack, teams, ocsf (HTTP)
	URL        string            `yaml:"url"`
	Secret     string            `yaml:"secret"`
	SecretFile string            `yaml:"secret_file"`
	Headers    map[string]string `yaml:"headers"`

	// syslog
	Address  string `yaml:"address"`
	Protocol string `yaml:"protocol"`
	Format   string `yaml:"format"`
	CAFile   string `yaml:"ca_file"`

	// ocsf (file)
	Path      string `yaml:"path"`
	MaxSizeMB int    `yaml:"max_size_mb"`
	MaxFiles  int    `yaml:"max_files"`

	// Timeout bounds one delivery attempt (default 10s, at most 2m);
	// MaxBackoff the wait between attempts, which doubles from one second
	// (default 5m, 1s to 1h).
	Timeout    time.Duration `yaml:"timeout"`
	MaxBackoff time.Duration `yaml:"max_backoff"`

	caPEM []byte // ca_file's content, read by Load
}

var (
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	headerRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
	events   = []string{store.EventNew, store.EventReopened, store.EventStatus, store.EventAudit}
)

// Parse decodes and validates an outputs file. Unknown keys, keys of
// another type, missing keys and values out of range are errors, each
// naming its output. secret_file and ca_file are read by Load.
func Parse(b []byte) (*Config, error) {
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("outputs file larger than %d bytes", maxFileSize)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("outputs file: %w", err)
	}
	if len(c.Outputs) > maxOutputs {
		return nil, fmt.Errorf("%d outputs: at most %d", len(c.Outputs), maxOutputs)
	}
	var errs []error
	seen := map[string]bool{}
	for i := range c.Outputs {
		o := &c.Outputs[i]
		if err := o.validate(); err != nil {
			errs = append(errs, fmt.Errorf("output %d (%q): %w", i+1, clip(o.Name), err))
			continue
		}
		if seen[o.Name] {
			errs = append(errs, fmt.Errorf("output %d: the name %q is used twice", i+1, o.Name))
		}
		seen[o.Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &c, nil
}

// Load reads and parses the outputs file at file, with each output's
// secret_file and ca_file (relative paths are relative to its directory).
func Load(file string) (*Config, error) {
	b, err := readCapped(file, maxFileSize)
	if err != nil {
		return nil, err
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	dir := filepath.Dir(file)
	for i := range c.Outputs {
		o := &c.Outputs[i]
		if o.SecretFile != "" {
			s, err := readCapped(rel(dir, o.SecretFile), maxSecret)
			if err != nil {
				return nil, fmt.Errorf("%s: output %q: secret_file: %w", file, o.Name, err)
			}
			if o.Secret = strings.TrimRight(string(s), "\r\n"); o.Secret == "" {
				return nil, fmt.Errorf("%s: output %q: secret_file %s is empty", file, o.Name, o.SecretFile)
			}
		}
		if o.CAFile != "" {
			if o.caPEM, err = readCapped(rel(dir, o.CAFile), maxFileSize); err != nil {
				return nil, fmt.Errorf("%s: output %q: ca_file: %w", file, o.Name, err)
			}
		}
		if o.Path != "" {
			o.Path = rel(dir, o.Path)
		}
	}
	return c, nil
}

func rel(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func readCapped(file string, max int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err == nil && int64(len(b)) > max {
		err = fmt.Errorf("%s: larger than %d bytes", file, max)
	}
	return b, err
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// keys of each type besides the common ones.
var typeKeys = map[string][]string{
	TypeWebhook: {"url", "secret", "secret_file", "headers"},
	TypeSlack:   {"url"},
	TypeTeams:   {"url"},
	TypeSyslog:  {"address", "protocol", "format", "ca_file"},
	TypeOCSF:    {"url", "secret", "secret_file", "headers", "path", "max_size_mb", "max_files"},
}

func (o *Output) validate() error {
	if !nameRE.MatchString(o.Name) {
		return errors.New("name: 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit")
	}
	keys, ok := typeKeys[o.Type]
	if !ok {
		return fmt.Errorf("type %q: one of webhook, slack, teams, syslog, ocsf", clip(o.Type))
	}
	set := map[string]bool{
		"url": o.URL != "", "secret": o.Secret != "", "secret_file": o.SecretFile != "", "headers": len(o.Headers) > 0,
		"address": o.Address != "", "protocol": o.Protocol != "", "format": o.Format != "", "ca_file": o.CAFile != "",
		"path": o.Path != "", "max_size_mb": o.MaxSizeMB != 0, "max_files": o.MaxFiles != 0,
	}
	for _, k := range []string{"url", "secret", "secret_file", "headers", "address", "protocol", "format", "ca_file", "path", "max_size_mb", "max_files"} {
		if set[k] && !slices.Contains(keys, k) {
			return fmt.Errorf("%s is not a key of %s outputs", k, o.Type)
		}
	}
	if o.MinSeverity != "" && !slices.Contains(store.Severities, o.MinSeverity) {
		return fmt.Errorf("min_severity %q: one of low, medium, high, critical", clip(o.MinSeverity))
	}
	if len(o.Rules) > maxRules {
		return fmt.Errorf("rules: at most %d", maxRules)
	}
	for _, r := range o.Rules {
		if _, err := path.Match(r, ""); err != nil || r == "" || len(r) > 200 {
			return fmt.Errorf("rules: %q is not a rule id or pattern", clip(r))
		}
	}
	if len(o.Events) > len(events) {
		return fmt.Errorf("events: at most %d", len(events))
	}
	for _, e := range o.Events {
		if !slices.Contains(events, e) {
			return fmt.Errorf("events: %q is not one of new, reopened, status, audit", clip(e))
		}
	}
	if o.Timeout < 0 || o.Timeout > 2*time.Minute {
		return errors.New("timeout: at most 2m")
	}
	if o.MaxBackoff != 0 && (o.MaxBackoff < time.Second || o.MaxBackoff > time.Hour) {
		return errors.New("max_backoff: 1s to 1h")
	}
	if o.Secret != "" && o.SecretFile != "" {
		return errors.New("secret and secret_file: give one")
	}
	if len(o.Secret) > maxSecret {
		return fmt.Errorf("secret: at most %d bytes", maxSecret)
	}
	for _, f := range []string{o.SecretFile, o.CAFile, o.Path} {
		if len(f) > maxString || strings.ContainsRune(f, 0) {
			return errors.New("a file name is too long or holds a NUL")
		}
	}
	if len(o.Headers) > maxHeaders {
		return fmt.Errorf("headers: at most %d", maxHeaders)
	}
	for k, v := range o.Headers {
		if !headerRE.MatchString(k) || len(v) > maxString || strings.ContainsAny(v, "\r\n\x00") {
			return fmt.Errorf("headers: %q is not a valid header", clip(k))
		}
		if h := strings.ToLower(k); h == "content-type" || h == "content-length" || h == "host" || strings.HasPrefix(h, "x-bonafide-") {
			return fmt.Errorf("headers: %s is set by the collector", k)
		}
	}
	if o.URL != "" {
		if err := checkURL(o.URL); err != nil {
			return err
		}
	}
	switch o.Type {
	case TypeWebhook:
		if o.URL == "" {
			return errors.New("url is required")
		}
		if o.Secret == "" && o.SecretFile == "" {
			return errors.New("secret or secret_file is required (the receiver checks X-Bonafide-Signature with it)")
		}
	case TypeSlack, TypeTeams:
		if o.URL == "" {
			return errors.New("url (the incoming webhook's address) is required")
		}
	case TypeSyslog:
		host, port, err := net.SplitHostPort(o.Address)
		if err != nil || host == "" || port == "" || len(o.Address) > 300 {
			return fmt.Errorf("address %q: host:port", clip(o.Address))
		}
		if o.Protocol == "" {
			o.Protocol = "tcp"
		}
		if !slices.Contains([]string{"tcp", "tls", "udp"}, o.Protocol) {
			return fmt.Errorf("protocol %q: tcp, tls or udp", clip(o.Protocol))
		}
		if o.CAFile != "" && o.Protocol != "tls" {
			return errors.New("ca_file needs protocol tls")
		}
		if o.Format == "" {
			o.Format = "cef"
		}
		if o.Format != "cef" && o.Format != "json" {
			return fmt.Errorf("format %q: cef or json", clip(o.Format))
		}
	case TypeOCSF:
		if (o.URL == "") == (o.Path == "") {
			return errors.New("one of path (a file) or url (an HTTP endpoint) is required")
		}
		if slices.Contains(o.Events, store.EventAudit) {
			return errors.New("events: audit entries are not OCSF detection findings; send them to a webhook or syslog output")
		}
		if o.Path == "" && (o.MaxSizeMB != 0 || o.MaxFiles != 0) {
			return errors.New("max_size_mb and max_files are for a file (path)")
		}
		if o.MaxSizeMB < 0 || o.MaxSizeMB > 10240 {
			return errors.New("max_size_mb: 1 to 10240")
		}
		if o.MaxFiles < 0 || o.MaxFiles > 100 {
			return errors.New("max_files: 1 to 100")
		}
		if o.Path != "" {
			o.MaxSizeMB, o.MaxFiles = cmpOr(o.MaxSizeMB, 100), cmpOr(o.MaxFiles, 5)
		}
	}
	if len(o.Events) == 0 {
		o.Events = []string{store.EventNew, store.EventReopened, store.EventStatus}
	}
	o.Timeout, o.MaxBackoff = cmpOr(o.Timeout, 10*time.Second), cmpOr(o.MaxBackoff, 5*time.Minute)
	return nil
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || len(s) > maxURL || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url: an http:// or https:// address of at most %d characters", maxURL)
	}
	return nil
}

// target is where the output sends, safe to show: no path or query of a
// URL (a Slack or Teams URL is its own secret).
func (o *Output) target() string {
	switch {
	case o.Address != "":
		return o.Protocol + "://" + o.Address
	case o.Path != "":
		return o.Path
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// wants reports whether the output takes event ev (the filters).
func (o *Output) wants(ev store.OutboxEvent) bool {
	if !slices.Contains(o.Events, ev.Event) {
		return false
	}
	if ev.Event == store.EventAudit {
		return true
	}
	if o.MinSeverity != "" && severityRank(ev.Severity) < severityRank(o.MinSeverity) {
		return false
	}
	if len(o.Rules) == 0 {
		return true
	}
	for _, r := range o.Rules {
		if ok, _ := path.Match(r, ev.RuleID); ok {
			return true
		}
	}
	return false
}

// severityRank orders severities: low 1 … critical 4, unknown 0.
func severityRank(s string) int {
	if i := slices.Index(store.Severities, s); i >= 0 {
		return len(store.Severities) - i
	}
	return 0
}
