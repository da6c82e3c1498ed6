package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// InstallerSettings are configuration values an installer left for the
// agent outside its configuration file: on Windows the MSI's COLLECTOR,
// ENROLL_SECRET and CA_FINGERPRINT properties, which msiexec writes under
// HKLM\SOFTWARE\Bonafide\Agent (an MSI cannot write a file with a private
// ACL without custom actions wixl does not have). Empty fields are unset.
type InstallerSettings struct {
	Collector     string
	EnrollSecret  string
	CAFingerprint string
}

// installerStore is where installer settings wait: the registry on Windows.
type installerStore interface {
	// Read returns the settings; none at all is not an error.
	Read() (InstallerSettings, error)
	// Clear deletes them, once they are in the configuration file.
	Clear() error
}

// maxInstallerValue bounds a setting: no address, secret or fingerprint is
// anywhere near as long.
const maxInstallerValue = 1024

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Empty says whether no setting is set.
func (s InstallerSettings) Empty() bool { return s == InstallerSettings{} }

// normalize validates the settings and returns them as the configuration
// file holds them: a collector is HOST:PORT, a fingerprint a hex SHA-256
// (written lower-case without colons, as `bonafide-collector ca fingerprint`
// prints it), and no value has white space or control characters.
func (s InstallerSettings) normalize() (InstallerSettings, error) {
	for _, f := range []struct{ name, value string }{
		{"collector", s.Collector}, {"enroll secret", s.EnrollSecret}, {"CA fingerprint", s.CAFingerprint},
	} {
		if len(f.value) > maxInstallerValue {
			return s, fmt.Errorf("installer setting %s: longer than %d bytes", f.name, maxInstallerValue)
		}
		if !utf8.ValidString(f.value) {
			return s, fmt.Errorf("installer setting %s: not valid UTF-8", f.name)
		}
		if i := strings.IndexFunc(f.value, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
			return s, fmt.Errorf("installer setting %s: white space or control character at byte %d", f.name, i)
		}
	}
	if s.Collector != "" {
		host, port, err := net.SplitHostPort(s.Collector)
		if err != nil || host == "" {
			return s, fmt.Errorf("installer setting collector %q is not HOST:PORT", s.Collector)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return s, fmt.Errorf("installer setting collector %q: bad port", s.Collector)
		}
	}
	if s.CAFingerprint != "" {
		s.CAFingerprint = strings.ToLower(strings.ReplaceAll(s.CAFingerprint, ":", ""))
		if !sha256Hex.MatchString(s.CAFingerprint) {
			return s, errors.New("installer setting CA fingerprint is not a hex SHA-256")
		}
	}
	return s, nil
}

// mergeInstallerSettings sets the settings' keys in a configuration file's
// YAML (empty: a new file) and keeps every other key and comment. Values are
// written double-quoted, so none can add a key; the result is checked to
// load as a Config.
func mergeInstallerSettings(file []byte, s InstallerSettings) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(file, &doc); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if doc.Kind == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, HeadComment: "bonafide agent configuration. collector, enroll_secret and ca_fingerprint came\n" +
			"from the installer (HKLM\\SOFTWARE\\Bonafide\\Agent on Windows). Other keys: state_dir,\n" +
			"scan_interval, heartbeat_interval, source_address, spool_max_bytes, ca_file."}
	}
	if len(doc.Content) == 0 {
		doc.Content = []*yaml.Node{{Kind: yaml.MappingNode}}
	}
	m := doc.Content[0]
	if m.Kind == yaml.ScalarNode && m.Tag == "!!null" {
		*m = yaml.Node{Kind: yaml.MappingNode, HeadComment: m.HeadComment}
	}
	if m.Kind != yaml.MappingNode {
		return nil, errors.New("config: not a YAML mapping")
	}
	for _, kv := range [][2]string{{"collector", s.Collector}, {"enroll_secret", s.EnrollSecret}, {"ca_fingerprint", s.CAFingerprint}} {
		if kv[1] == "" {
			continue
		}
		value := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: kv[1], Style: yaml.DoubleQuotedStyle}
		found := false
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == kv[0] {
				m.Content[i+1], found = value, true
			}
		}
		if !found {
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: kv[0]}, value)
		}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b.Bytes()))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config after merging installer settings: %w", err)
	}
	return b.Bytes(), nil
}

// applyInstallerSettings moves the settings waiting in store into the
// configuration file at path: it merges them into the file, writes it with
// write (which must leave it readable only by the agent's account and
// administrators), and only then clears the store. It reports whether it
// wrote the file. Invalid settings are an error and stay where they are.
func applyInstallerSettings(path string, store installerStore, write func(path string, data []byte) error) (bool, error) {
	s, err := store.Read()
	if err != nil {
		return false, err
	}
	if s.Empty() {
		return false, nil
	}
	if s, err = s.normalize(); err != nil {
		return false, err
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read config: %w", err)
	}
	b, err := mergeInstallerSettings(old, s)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	if err := write(path, b); err != nil {
		return false, fmt.Errorf("write config %s: %w", path, err)
	}
	if err := store.Clear(); err != nil {
		return true, fmt.Errorf("config %s written, but the installer settings were not cleared: %w", path, err)
	}
	return true, nil
}

// ApplyInstallerSettings moves the configuration an installer left outside
// the configuration file into the file at path, before `run` loads it. On
// Windows those are the MSI's properties in HKLM\SOFTWARE\Bonafide\Agent:
// the agent, running as SYSTEM, writes them into path readable only by
// SYSTEM and Administrators, then deletes them from the registry. A process
// that may not read that key (not an administrator) leaves them for the
// service. Elsewhere installers write the file themselves and this does
// nothing.
func ApplyInstallerSettings(path string, log *slog.Logger) error {
	store, write := installerSource()
	if store == nil {
		return nil
	}
	ok, err := applyInstallerSettings(path, store, write)
	if errors.Is(err, fs.ErrPermission) && !ok {
		log.Warn("installer settings not applied: no access (the service applies them)", "err", err)
		return nil
	}
	if ok {
		log.Info("installer settings moved into the configuration file", "config", path)
	}
	return err
}
