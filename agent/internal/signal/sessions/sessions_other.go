//go:build !linux && !darwin && !windows

package sessions

import (
	"context"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// readLive reports nothing on operating systems the agent does not support.
func readLive(ctx context.Context, cursor string) (*agentv1.Sessions, error) {
	return &agentv1.Sessions{HistoryCursor: cursor}, nil
}
