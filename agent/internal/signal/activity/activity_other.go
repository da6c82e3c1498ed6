//go:build !linux && !darwin && !windows

package activity

import (
	"context"
	"time"
)

// LiveIdle is this OS's idle reader: none, so ok is always false.
func LiveIdle(context.Context) (time.Duration, bool, error) {
	return 0, false, nil
}

// Readers returns no idle reader: there is none here.
func Readers(string) (idle, rhythm IdleFunc) {
	return nil, nil
}
