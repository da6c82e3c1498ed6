//go:build linux

package sessions

import (
	"context"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// readLive reads the live system's logind state, utmp and wtmp.
//
// Systems that record logins only in wtmpdb (/var/lib/wtmpdb/wtmp.db,
// SQLite; e.g. Debian 13 and openSUSE with Y2038-safe login records) are
// not supported: the agent has no SQLite reader. Current sessions still
// come from logind there; history is empty and the cursor stays put.
func readLive(ctx context.Context, cursor string) (*agentv1.Sessions, error) {
	return collectLinuxRoot(ctx, "/", cursor)
}
