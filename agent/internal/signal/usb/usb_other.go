//go:build !linux && !darwin && !windows

package usb

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func readLive(context.Context) (*agentv1.Usb, error) {
	return nil, fmt.Errorf("no usb reader for %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
