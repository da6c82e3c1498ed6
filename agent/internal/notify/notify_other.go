//go:build !linux && !darwin && !windows

package notify

import (
	"context"
	"errors"
)

func show(context.Context, string, Message) error { return errors.ErrUnsupported }
