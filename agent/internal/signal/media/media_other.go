//go:build !linux && !darwin && !windows

package media

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func readLive(context.Context) ([]*agentv1.MediaDevice, error) {
	return nil, fmt.Errorf("no media reader for %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
