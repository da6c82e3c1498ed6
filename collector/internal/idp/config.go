package idp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Limits of the connectors file (it is outside input).
const (
	maxConfigFile = 1 << 20
	maxConnectors = 32
	maxSecret     = 64 << 10 // a service-account JSON key is about 2.3 KiB
)

// Config is the connectors file (serve --idp): `connectors:` and its list.
type Config struct {
	Connectors []ConnectorConfig `yaml:"connectors"`
}

// ConnectorConfig is one pull connector. Secrets are never written in the
// file itself: each is read from a file (*_file) or an environment
// variable (*_env).
type ConnectorConfig struct {
	// Name identifies the connector (its cursor and state are kept under
	// it): 1-64 of a-z, 0-9, '-', '_'.
	Name     string `yaml:"name"`
	Provider string `yaml:"provider"` // okta, entra or google
	// BaseURL is the API's root: https://ORG.okta.com for Okta (required),
	// https://graph.microsoft.com for Entra and
	// https://admin.googleapis.com for Google (the defaults).
	BaseURL string `yaml:"base_url"`
	// PollInterval is how often the connector asks for new events
	// (default 5m, at least 10s).
	PollInterval time.Duration `yaml:"poll_interval"`
	// Lookback is how far back the first poll reaches (default 24h).
	Lookback time.Duration `yaml:"lookback"`

	// okta: an API token of a read-only administrator (or a token with
	// okta.logs.read).
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`

	// entra: an app registration with the application permission
	// AuditLog.Read.All, by OAuth2 client credentials.
	TenantID         string `yaml:"tenant_id"`
	ClientID         string `yaml:"client_id"`
	ClientSecretFile string `yaml:"client_secret_file"`
	ClientSecretEnv  string `yaml:"client_secret_env"`

	// google: a service account with domain-wide delegation of the scope
	// https://www.googleapis.com/auth/admin.reports.audit.readonly,
	// acting as Subject (an administrator's email).
	CredentialsFile string `yaml:"credentials_file"`
	CredentialsEnv  string `yaml:"credentials_env"`
	Subject         string `yaml:"subject"`

	// TokenURL overrides the OAuth2 token endpoint (entra, google): for
	// national clouds, or a test server.
	TokenURL string `yaml:"token_url"`
}

var connectorName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// LoadConfig reads and checks a connectors file. getenv reads the
// environment (os.Getenv).
func LoadConfig(path string, getenv func(string) string) ([]Connector, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(f, maxConfigFile+1)); err != nil {
		return nil, err
	}
	if b.Len() > maxConfigFile {
		return nil, fmt.Errorf("%s: larger than 1 MiB", path)
	}
	return ParseConfig(b.Bytes(), getenv)
}

// ParseConfig checks a connectors file's content and reads the secrets it
// names. Every problem is reported, with the connector it is in.
func ParseConfig(data []byte, getenv func(string) string) ([]Connector, error) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("idp connectors: %w", err)
	}
	if len(cfg.Connectors) > maxConnectors {
		return nil, fmt.Errorf("idp connectors: more than %d", maxConnectors)
	}
	var errs []error
	var out []Connector
	seen := map[string]bool{}
	for i, c := range cfg.Connectors {
		conn, err := c.build(getenv)
		if err != nil {
			errs = append(errs, fmt.Errorf("connector %d (%s): %w", i+1, c.Name, err))
			continue
		}
		if seen[c.Name] {
			errs = append(errs, fmt.Errorf("connector %d: duplicate name %q", i+1, c.Name))
			continue
		}
		seen[c.Name] = true
		out = append(out, conn)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Connector is one checked connector with its secrets read.
type Connector struct {
	ConnectorConfig
	base   *url.URL
	secret []byte // the token, the client secret, or the service-account JSON
}

func (c ConnectorConfig) build(getenv func(string) string) (Connector, error) {
	conn := Connector{ConnectorConfig: c}
	if !connectorName.MatchString(c.Name) {
		return conn, fmt.Errorf("name %q: want 1-64 of a-z, 0-9, '-', '_'", c.Name)
	}
	if !slices.Contains([]string{Okta, Entra, Google}, c.Provider) {
		return conn, fmt.Errorf("provider %q: want okta, entra or google", c.Provider)
	}
	if conn.PollInterval == 0 {
		conn.PollInterval = 5 * time.Minute
	}
	if conn.PollInterval < 10*time.Second {
		return conn, fmt.Errorf("poll_interval %s: at least 10s", c.PollInterval)
	}
	if conn.Lookback == 0 {
		conn.Lookback = 24 * time.Hour
	}
	if conn.Lookback < 0 || conn.Lookback > 180*24*time.Hour {
		return conn, fmt.Errorf("lookback %s: between 0 and 180 days", c.Lookback)
	}
	base := c.BaseURL
	switch {
	case base == "" && c.Provider == Entra:
		base = "https://graph.microsoft.com"
	case base == "" && c.Provider == Google:
		base = "https://admin.googleapis.com"
	case base == "":
		return conn, errors.New("base_url: required for okta (https://ORG.okta.com)")
	}
	u, err := checkURL(base)
	if err != nil {
		return conn, fmt.Errorf("base_url: %w", err)
	}
	conn.base = u
	if c.TokenURL != "" {
		if _, err := checkURL(c.TokenURL); err != nil {
			return conn, fmt.Errorf("token_url: %w", err)
		}
	}
	var file, env, what string
	switch c.Provider {
	case Okta:
		file, env, what = c.TokenFile, c.TokenEnv, "token_file or token_env"
	case Entra:
		if c.TenantID == "" || c.ClientID == "" {
			return conn, errors.New("tenant_id and client_id: required for entra")
		}
		file, env, what = c.ClientSecretFile, c.ClientSecretEnv, "client_secret_file or client_secret_env"
	case Google:
		if c.Subject == "" {
			return conn, errors.New("subject: required for google (the administrator the service account acts as)")
		}
		file, env, what = c.CredentialsFile, c.CredentialsEnv, "credentials_file or credentials_env"
	}
	if (file == "") == (env == "") {
		return conn, fmt.Errorf("give exactly one of %s", what)
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return conn, fmt.Errorf("secret: %w", err)
		}
		conn.secret = bytes.TrimSpace(b)
	} else {
		conn.secret = []byte(strings.TrimSpace(getenv(env)))
		if len(conn.secret) == 0 {
			return conn, fmt.Errorf("secret: environment variable %s is empty or not set", env)
		}
	}
	if len(conn.secret) == 0 || len(conn.secret) > maxSecret {
		return conn, errors.New("secret: empty or larger than 64 KiB")
	}
	return conn, nil
}

// checkURL accepts an absolute http(s) URL without user info, query or
// fragment.
func checkURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q: want an http(s) URL without credentials, query or fragment", s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}
