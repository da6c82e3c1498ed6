//go:build !windows

package upload

import "os"

// mkdirPrivate creates dir readable only by its owner (the agent runs as root).
func mkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}
