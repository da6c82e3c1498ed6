package display

import (
	"context"

	"github.com/bonafide-sec/bonafide/agent/internal/cmdx"
	"github.com/bonafide-sec/bonafide/agent/internal/ioreg"
)

// PresentMonitorIDs lists the displays attached (their identity, not
// their EDID bytes), sorted, which the runner's change fingerprint polls
// so that a monitor or an IP-KVM's HDMI plugged in is scanned within its
// watch interval. Nil when ioreg fails or nothing is attached.
func PresentMonitorIDs() []string {
	ctx := context.Background()
	clcd2, _ := cmdx.Run(ctx, macPresentTimeout, ioreg.MaxSize, macIoreg, "-a", "-l", "-r", "-c", "AppleCLCD2", "-d", "1")
	connect, _ := cmdx.Run(ctx, macPresentTimeout, ioreg.MaxSize, macIoreg, "-a", "-l", "-r", "-c", "IODisplayConnect", "-d", "2")
	return MacPresentMonitors(clcd2, connect)
}
