//go:build !linux && !darwin && !windows

package posture

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func readLive(context.Context, Tools) (*agentv1.Posture, error) {
	return nil, fmt.Errorf("no posture reader for %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
