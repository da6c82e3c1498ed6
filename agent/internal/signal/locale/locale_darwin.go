package locale

import (
	"context"
	"os"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// readLive reads the live system's preference files (the agent runs as
// root, so every user's are readable). When the zone name does not
// resolve, the offset is the process's local one.
func readLive(ctx context.Context, now time.Time) (*agentv1.Locale, error) {
	out, err := macReadFS(ctx, os.DirFS("/"), now)
	if err != nil {
		return nil, err
	}
	if _, ok := zoneOffset(out.Timezone, now); !ok {
		_, off := now.In(time.Local).Zone()
		out.UtcOffsetSeconds = int32(off)
	}
	return out, nil
}
