//go:build unix

package ingesttest

import (
	"syscall"
	"time"
)

// ProcessCPU is the CPU time (user and system) the process has used, all
// threads and the garbage collector's included: on a shared machine a
// benchmark's CPU time per operation measures its work better than the
// wall clock, which counts the time other processes held the cores.
func ProcessCPU() time.Duration {
	var r syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r); err != nil {
		return 0
	}
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}
