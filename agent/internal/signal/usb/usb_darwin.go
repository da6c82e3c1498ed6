package usb

import (
	"context"
	"fmt"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/cmdx"
	"github.com/bonafide-sec/bonafide/agent/internal/ioreg"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// readLive lists the USB devices from the I/O Registry: every
// IOUSBHostDevice entry with its subtree (interfaces, HID report
// descriptors, SCSI inquiry strings), as an XML property list.
func readLive(ctx context.Context) (*agentv1.Usb, error) {
	out, err := cmdx.Run(ctx, 15*time.Second, ioreg.MaxSize, "/usr/sbin/ioreg", "-a", "-l", "-r", "-c", "IOUSBHostDevice")
	if err != nil {
		return nil, fmt.Errorf("usb: ioreg: %w", err)
	}
	return macParseUSB(out)
}
