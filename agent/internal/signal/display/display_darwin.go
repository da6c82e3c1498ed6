package display

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/cmdx"
	"github.com/bonafide-sec/bonafide/agent/internal/ioreg"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

const (
	macIoreg = "/usr/sbin/ioreg"
	// macIoregTimeout bounds one ioreg run.
	macIoregTimeout = 15 * time.Second
	// macPresentTimeout bounds one ioreg run of the change fingerprint.
	macPresentTimeout = 5 * time.Second
)

// readLive lists the displays from the I/O Registry: AppleCLCD2 entries on
// Apple silicon, IODisplayConnect entries on Intel Macs (the class that
// does not exist on a machine matches nothing), and the lid state from
// IOPMrootDomain.
func readLive(ctx context.Context) (*agentv1.Displays, error) {
	var displays []*agentv1.Display
	var errs []error
	for _, class := range []string{"AppleCLCD2", "IODisplayConnect"} {
		out, err := cmdx.Run(ctx, macIoregTimeout, ioreg.MaxSize, macIoreg, "-a", "-l", "-r", "-c", class)
		if err == nil {
			var ds []*agentv1.Display
			ds, err = macParseFramebuffers(out, class)
			displays = append(displays, ds...)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("display: ioreg -c %s: %w", class, err))
		}
	}
	if len(errs) == 2 {
		return nil, errors.Join(errs...)
	}
	lid := agentv1.LidState_LID_STATE_UNSPECIFIED
	if out, err := cmdx.Run(ctx, macIoregTimeout, ioreg.MaxSize, macIoreg, "-a", "-r", "-k", "AppleClamshellState", "-d", "1"); err == nil {
		lid, _ = macParseClamshell(out)
	}
	return macAssemble(displays, lid), nil
}
