//go:build !linux && !darwin && !windows

package remoteaccess

import (
	"context"
	"errors"
	"fmt"
	"runtime"
)

// readInventory is not implemented on this OS.
func readInventory(context.Context, string) (*Inventory, error) {
	return nil, fmt.Errorf("remote access on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
