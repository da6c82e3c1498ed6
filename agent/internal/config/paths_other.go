//go:build !linux && !darwin && !windows

package config

// DefaultPath is the configuration file the agent reads without --config.
func DefaultPath() string { return "/etc/bonafide/agent.yaml" }

// DefaultStateDir holds the key, certificates and spool.
func DefaultStateDir() string { return "/var/lib/bonafide" }
