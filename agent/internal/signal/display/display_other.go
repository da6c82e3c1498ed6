//go:build !linux && !darwin && !windows

package display

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func readLive(context.Context) (*agentv1.Displays, error) {
	return nil, fmt.Errorf("no display reader for %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
