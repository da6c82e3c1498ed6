//go:build darwin

package posture

import (
	"context"
	"os"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func readLive(_ context.Context, _ Tools) (*agentv1.Posture, error) {
	return ReadMacFS(os.DirFS("/")), nil
}
