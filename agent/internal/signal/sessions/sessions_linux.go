//go:build linux

package sessions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"time"

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
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, wtmpdbArgs...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &limitedBuffer{&stdout, maxWtmpdbOutput}, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("sessions: wtmpdb last: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// limitedBuffer fails writes past its limit, so a runaway command is cut.
type limitedBuffer struct {
	b     *bytes.Buffer
	limit int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.b.Len()+len(p) > l.limit {
		return 0, errors.New("output too large")
	}
	return l.b.Write(p)
}
