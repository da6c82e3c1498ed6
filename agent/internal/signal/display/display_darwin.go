package display

import (
	"context"
	"errors"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// readLive is being written; see the helper's task.
func readLive(context.Context) (*agentv1.Displays, error) {
	return nil, errors.ErrUnsupported
}
