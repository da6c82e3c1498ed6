//go:build !unix

package cmdx

import (
	"errors"
	"os/exec"
)

// killGroup leaves the default cancellation, which kills the process.
func killGroup(*exec.Cmd) {}

// runAs refuses to run as another user: only Unix can.
func runAs(_ *exec.Cmd, u *User) error {
	if u != nil {
		return errors.ErrUnsupported
	}
	return nil
}
