//go:build !linux && !darwin && !windows

package hostid

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// collectLive has no live reader on this OS (it returns errors.ErrUnsupported); fixture roots still work.
func collectLive(context.Context) (*agentv1.HostIdentity, error) {
	return nil, fmt.Errorf("live system on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
