package usb

import (
	"io/fs"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

func readSysfs(fsys fs.FS) (*agentv1.Usb, error) { return &agentv1.Usb{}, nil }
