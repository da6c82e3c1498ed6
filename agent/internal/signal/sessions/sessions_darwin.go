//go:build darwin

package sessions

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/cmdx"
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
	// last prints the newest logins first: output cut at the cap still
	// holds the recent history, and is used.
	b, err := cmdx.Run(ctx, macLastWait, maxLastOutput, macLastPath)
	if err != nil && len(b) == 0 {
		return out, nil // no history this time; keep the cursor
	}
	hist, next := macHistory(macParseLast(b, time.Now(), time.Local), cursor)
	for _, s := range hist {
		out.History = append(out.History, s.proto())
	}
	out.HistoryCursor = next
	return out, nil
}
