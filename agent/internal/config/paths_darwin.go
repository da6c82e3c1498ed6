package config

// DefaultPath is the configuration file the agent reads without --config.
func DefaultPath() string { return "/Library/Application Support/Bonafide/agent.yaml" }

// DefaultStateDir holds the key, certificates and spool.
func DefaultStateDir() string { return "/Library/Application Support/Bonafide/state" }
