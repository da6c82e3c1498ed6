//go:build !linux && !darwin && !windows

package locale

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func readLive(context.Context, time.Time) (*agentv1.Locale, error) {
	return nil, fmt.Errorf("no locale reader for %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
