//go:build !unix

package cmdx

import "os/exec"

// killGroup leaves the default cancellation, which kills the process.
func killGroup(*exec.Cmd) {}
