package display

import (
	"context"
	"os"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Collect reads the displays and the lid state of the machine whose
// filesystem root is root ("" or "/" for the live system). Under any
// other root it reads a Linux sysfs/procfs tree whatever the OS, so that
// fixture roots work everywhere.
func Collect(ctx context.Context, root string) (*agentv1.Displays, error) {
	if root != "" && root != "/" {
		return readSysfs(os.DirFS(root))
	}
	return readLive(ctx)
}
