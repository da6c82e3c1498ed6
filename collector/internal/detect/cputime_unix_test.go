//go:build unix

package detect_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and system) the process has used, all
// threads and the garbage collector's included: on a shared machine it
// measures a benchmark's work better than the wall clock.
func processCPU() time.Duration {
	var r syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r); err != nil {
		return 0
	}
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}
