//go:build linux

package posture

import (
	"context"
	"os"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func readLive(_ context.Context, packages map[string]string) (*agentv1.Posture, error) {
	return ReadLinuxFS(os.DirFS("/"), packages), nil
}
