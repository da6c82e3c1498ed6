// Package config reads the agent's YAML configuration.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the agent configuration file. Keys are snake_case in YAML.
type Config struct {
	// Collector is the collector's gRPC address, HOST:PORT.
	Collector string `yaml:"collector"`
	// EnrollSecret lets `run` enroll by itself when it has no certificate.
	EnrollSecret string `yaml:"enroll_secret"`
	// CAFingerprint pins the collector's CA (hex SHA-256 of its certificate).
	CAFingerprint string `yaml:"ca_fingerprint"`
	// CAFile is a PEM file with the collector's CA, an alternative to the fingerprint.
	CAFile string `yaml:"ca_file"`
	// StateDir holds the key, certificates and spool.
	StateDir string `yaml:"state_dir"`
	// ScanInterval overrides the collector's scan interval when set.
	ScanInterval time.Duration `yaml:"scan_interval"`
	// HeartbeatInterval overrides the collector's heartbeat interval when set.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// SourceAddress is the local address to dial from (multi-homed hosts).
	SourceAddress string `yaml:"source_address"`
	// SpoolMaxBytes bounds the on-disk queue (default 50 MB).
	SpoolMaxBytes int64 `yaml:"spool_max_bytes"`
	// StartDelay bounds the random delay before `run` first contacts the
	// collector (nil: 30s; 0s: none), so that a fleet started together
	// does not arrive together.
	StartDelay *time.Duration `yaml:"start_delay"`
}

// Load reads the configuration at path. A missing file at the default path
// is not an error (the agent then runs with defaults); a missing file that
// was asked for explicitly is.
func Load(path string, explicit bool) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !explicit:
	case err != nil:
		return c, fmt.Errorf("read config: %w", err)
	default:
		if c, err = Parse(b); err != nil {
			return c, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir()
	}
	return c, nil
}

// Parse decodes agent.yaml (unknown keys are an error) and checks that no
// interval or size is negative. It never panics, whatever the bytes
// (FuzzParse).
func Parse(b []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, err
	}
	if c.ScanInterval < 0 || c.HeartbeatInterval < 0 || c.SpoolMaxBytes < 0 || c.StartDelay != nil && *c.StartDelay < 0 {
		return c, errors.New("intervals and sizes must not be negative")
	}
	return c, nil
}
