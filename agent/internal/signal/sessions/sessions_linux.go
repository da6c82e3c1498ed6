//go:build linux

package sessions

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/cmdx"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// wtmpdbDB is where wtmpdb keeps the login records.
const wtmpdbDB = "/var/lib/wtmpdb/wtmp.db"

// maxWtmpdbOutput bounds what the agent reads from `wtmpdb last`.
const maxWtmpdbOutput = 16 << 20

// readLive reads the live system's logind state, utmp and wtmp. Systems
// that record logins only in wtmpdb (no /var/log/wtmp; e.g. Debian 13)
// get their history from `wtmpdb last` (see linux_wtmpdb.go).
func readLive(ctx context.Context, cursor string) (*agentv1.Sessions, error) {
	out, err := collectLinuxRoot(ctx, "/", cursor)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat("/" + linuxWtmp); !errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if _, err := os.Stat(wtmpdbDB); err != nil {
		return out, nil
	}
	b, err := runWtmpdb(ctx)
	if err != nil {
		return nil, err
	}
	out.History, out.HistoryCursor, err = parseWtmpdb(b, cursor)
	return out, err
}

func runWtmpdb(ctx context.Context) ([]byte, error) {
	path, err := exec.LookPath("wtmpdb")
	if err != nil {
		return nil, fmt.Errorf("sessions: %s exists but the wtmpdb tool is not installed: %w", wtmpdbDB, err)
	}
	out, err := cmdx.RunEnv(ctx, []string{"TZ=UTC"}, 20*time.Second, maxWtmpdbOutput, path, wtmpdbArgs...)
	if err != nil {
		return nil, fmt.Errorf("sessions: wtmpdb last: %w", err)
	}
	return out, nil
}
