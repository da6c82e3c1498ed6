//go:build unix

package cmdx

import (
	"os/exec"
	"syscall"
)

// killGroup starts the command in a process group of its own and makes
// cancellation kill the whole group, so that a shell script's children
// (or a tool's helpers) do not outlive it.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// runAs makes the command run as u (nil: as the agent).
func runAs(cmd *exec.Cmd, u *User) error {
	if u != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID}
	}
	return nil
}
