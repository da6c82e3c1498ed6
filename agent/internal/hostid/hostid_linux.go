package hostid

import (
	"context"
	"fmt"
	"os"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// collectLive reads the running Linux system: the same files as a fixture
// root, under "/". os.DirFS (not os.Root) is used because the kernel's own
// links, such as /sys/class/dmi/id -> ../../devices/virtual/dmi/id, and a
// distribution's /etc/os-release -> ../usr/lib/os-release must resolve.
func collectLive(ctx context.Context) (*agentv1.HostIdentity, error) {
	id, problems, err := readTree(ctx, os.DirFS("/"))
	if err != nil {
		return nil, err
	}
	if id.Hostname == "" {
		if h, err := os.Hostname(); err == nil {
			id.Hostname = cleanString(h)
		} else {
			problems = append(problems, fmt.Errorf("hostname: %w", err))
		}
	}
	return finish(id, problems)
}
