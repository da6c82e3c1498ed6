//go:build !linux && !darwin && !windows

package network

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func readLive(context.Context) (*agentv1.Network, error) {
	return nil, fmt.Errorf("no network reader for %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
