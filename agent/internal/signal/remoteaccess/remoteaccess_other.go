//go:build !linux && !darwin && !windows

package remoteaccess

import (
	"context"
	"errors"
	"fmt"
	"runtime"
)

// readInventory has no reader for this OS: it returns errors.ErrUnsupported.
func readInventory(context.Context, string, func(Process) bool) (*Inventory, error) {
	return nil, fmt.Errorf("remote access on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
