package packaging

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// maxConfigValue caps each configuration value.
const maxConfigValue = 1024

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// checkConfig refuses configuration values that cannot be right: too
// long, invalid UTF-8, white space around them, control characters or
// line breaks (which could smuggle keys into a file or a script), a
// collector that is not HOST:PORT, a fingerprint that is not a SHA-256.
// It returns c with the fingerprint as `bonafide-collector ca
// fingerprint` prints it (people paste upper case and colons too).
func checkConfig(c Config) (Config, error) {
	for _, f := range []struct{ name, value string }{
		{"collector", c.Collector}, {"enroll secret", c.EnrollSecret}, {"CA fingerprint", c.CAFingerprint},
	} {
		if err := checkConfigValue(f.value); err != nil {
			return c, fmt.Errorf("package config: %s: %w", f.name, err)
		}
	}
	if c.Collector != "" {
		host, port, err := net.SplitHostPort(c.Collector)
		if err != nil || host == "" || strings.ContainsAny(host, " /\\") {
			return c, fmt.Errorf("package config: collector %q is not HOST:PORT", c.Collector)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return c, fmt.Errorf("package config: collector %q: bad port", c.Collector)
		}
	}
	if c.CAFingerprint != "" {
		c.CAFingerprint = strings.ToLower(strings.ReplaceAll(c.CAFingerprint, ":", ""))
		if !sha256Hex.MatchString(c.CAFingerprint) {
			return c, fmt.Errorf("package config: CA fingerprint %q is not a hex SHA-256", c.CAFingerprint)
		}
	}
	return c, nil
}

func checkConfigValue(s string) error {
	if len(s) > maxConfigValue {
		return fmt.Errorf("longer than %d bytes", maxConfigValue)
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	if strings.TrimSpace(s) != s {
		return errors.New("leading or trailing white space")
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) || r == '\uFEFF' {
			return fmt.Errorf("control character %U", r)
		}
	}
	return nil
}

// agentYAML renders a pre-configured package's agent.yaml, header (a
// comment) first; nil when c is empty (the package then ships no
// configuration). Values are checked (checkConfig; a secret needs a
// collector to present it to) and written double-quoted by the YAML
// encoder, so no value can add a key.
func agentYAML(c Config, header string) ([]byte, error) {
	if c == (Config{}) {
		return nil, nil
	}
	c, err := checkConfig(c)
	if err != nil {
		return nil, err
	}
	if c.EnrollSecret != "" && c.Collector == "" {
		return nil, errors.New("package config: an enroll secret needs the collector's address")
	}
	doc := &yaml.Node{Kind: yaml.MappingNode}
	for _, f := range []struct{ key, value, comment string }{
		{"collector", c.Collector, "The collector's gRPC address, HOST:PORT."},
		{"enroll_secret", c.EnrollSecret, "The agent enrolls with this secret the first time it runs."},
		{"ca_fingerprint", c.CAFingerprint, "SHA-256 of the collector's CA certificate: the agent trusts no other."},
	} {
		if f.value != "" {
			doc.Content = append(doc.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Value: f.key, HeadComment: f.comment},
				&yaml.Node{Kind: yaml.ScalarNode, Value: f.value, Style: yaml.DoubleQuotedStyle})
		}
	}
	var b bytes.Buffer
	b.WriteString(header)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("agent.yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("agent.yaml: %w", err)
	}
	return b.Bytes(), nil
}
