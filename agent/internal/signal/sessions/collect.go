// Package sessions collects who is logged in now and the login history since
// the previous snapshot.
package sessions

import (
	"context"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// MaxHistory caps the number of history entries one snapshot carries. When
// more are available, the newest MaxHistory are kept.
const MaxHistory = 500

// Collect reads current sessions and the login history after cursor (the
// history_cursor of the previous snapshot; "" = from the start, capped to
// the newest MaxHistory entries). Under a root other than "" or "/" it
// reads the Linux files whatever the OS.
func Collect(ctx context.Context, root, cursor string) (*agentv1.Sessions, error) {
	if root != "" && root != "/" {
		return collectLinuxRoot(ctx, root, cursor)
	}
	return readLive(ctx, cursor)
}

// readLive(ctx context.Context, cursor string) (*agentv1.Sessions, error) is
// defined per OS in sessions_<os>.go.
var _ func(context.Context, string) (*agentv1.Sessions, error) = readLive
