package locale

import (
	"context"
	"os"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/cmdx"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// readLive reads the live system's files. When they leave the system
// locale or the system keyboard unknown (distributions that keep them
// elsewhere), `localectl status` fills the gap; when the zone name does
// not resolve, the offset is the process's local one.
func readLive(ctx context.Context, now time.Time) (*agentv1.Locale, error) {
	out, err := readLinux(ctx, os.DirFS("/"), now)
	if err != nil {
		return nil, err
	}
	if _, ok := zoneOffset(out.Timezone, now); !ok {
		_, off := now.In(time.Local).Zone()
		out.UtcOffsetSeconds = int32(off)
	}
	hasSystem := false
	for _, l := range out.KeyboardLayouts {
		if l.User == "" {
			hasSystem = true
		}
	}
	if out.SystemLocale != "" && hasSystem {
		return out, nil
	}
	b, err := cmdx.Run(ctx, 5*time.Second, maxText, "localectl", "status")
	if err != nil {
		return out, nil
	}
	st := parseLocalectl(b)
	if out.SystemLocale == "" {
		out.SystemLocale = localeFromVars(st.vars)
	}
	if !hasSystem {
		ls := layoutSet{}
		ls.add("", "localectl", xkbLayouts(st.x11Layout, st.x11Var))
		out.KeyboardLayouts = append(ls.list, out.KeyboardLayouts...)
	}
	return out, nil
}
