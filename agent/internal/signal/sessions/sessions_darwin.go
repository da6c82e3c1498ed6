//go:build darwin

package sessions

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

const (
	macUtmpxPath = "/var/run/utmpx"
	macLastPath  = "/usr/bin/last"
	macLastWait  = 20 * time.Second
)

// readLive reads current sessions from /var/run/utmpx and the history from
// `last` (macOS keeps wtmp in the unified log/ASL, which last reads).
// Screen Sharing does not create a login record of its own; it shows up
// only as the console session it attaches to.
func readLive(ctx context.Context, cursor string) (*agentv1.Sessions, error) {
	out := &agentv1.Sessions{HistoryCursor: cursor}
	if f, err := os.Open(macUtmpxPath); err == nil {
		data, _ := io.ReadAll(io.LimitReader(f, maxUtmpBytes))
		f.Close()
		for _, s := range macCurrentFromUtmpx(macParseUtmpx(data)) {
			out.Current = append(out.Current, s.proto())
		}
	}
	ctx, cancel := context.WithTimeout(ctx, macLastWait)
	defer cancel()
	cmd := exec.CommandContext(ctx, macLastPath)
	cmd.Env = []string{"LC_ALL=C", "PATH=/usr/bin:/bin"}
	var buf bytes.Buffer
	cmd.Stdout = &macLimitedWriter{w: &buf, n: maxLastOutput}
	if err := cmd.Run(); err != nil && buf.Len() == 0 {
		return out, nil // no history this time; keep the cursor
	}
	hist, next := macHistory(macParseLast(buf.Bytes(), time.Now(), time.Local), cursor)
	for _, s := range hist {
		out.History = append(out.History, s.proto())
	}
	out.HistoryCursor = next
	return out, nil
}

// macLimitedWriter keeps the first n bytes written and discards the rest
// without failing the writer (so a chatty child process is not killed by
// EPIPE).
type macLimitedWriter struct {
	w io.Writer
	n int64
}

func (l *macLimitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(int64(len(p)), l.n)
		if _, err := l.w.Write(p[:k]); err != nil {
			return 0, err
		}
		l.n -= k
	}
	return len(p), nil
}
