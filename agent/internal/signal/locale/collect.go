// Package locale collects the locale signal: the machine's time zone and
// its offset from UTC, the system locale, and the keyboard layouts and
// input methods configured system-wide and per user. A device whose time
// zone does not match the hire's declared location, or whose users have a
// Korean or Chinese input method enabled, is a laptop-farm tell-tale.
//
// Only configuration is read: which layouts and input methods are
// enabled, never what is typed.
package locale

import (
	"context"
	"os"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Collect reads the time zone, system locale and keyboard layouts / input
// methods of the machine whose filesystem root is root ("" or "/" for the
// live system). Under any other root it reads the Linux file layout
// whatever the OS, so that fixture roots work everywhere. now is the
// instant for utc_offset_seconds.
func Collect(ctx context.Context, root string, now time.Time) (*agentv1.Locale, error) {
	if root != "" && root != "/" {
		return readLinux(ctx, os.DirFS(root), now)
	}
	return readLive(ctx, now)
}
