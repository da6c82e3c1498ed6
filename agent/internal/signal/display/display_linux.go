package display

import (
	"context"
	"os"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func readLive(context.Context) (*agentv1.Displays, error) {
	return readSysfs(os.DirFS("/"))
}
