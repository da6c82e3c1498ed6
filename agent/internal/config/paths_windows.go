package config

import (
	"os"
	"path/filepath"
)

func programData() string {
	if d := os.Getenv("ProgramData"); d != "" {
		return d
	}
	return `C:\ProgramData`
}

// DefaultPath is %ProgramData%\Bonafide\agent.yaml.
func DefaultPath() string { return filepath.Join(programData(), "Bonafide", "agent.yaml") }

// DefaultStateDir is %ProgramData%\Bonafide\state.
func DefaultStateDir() string { return filepath.Join(programData(), "Bonafide", "state") }
