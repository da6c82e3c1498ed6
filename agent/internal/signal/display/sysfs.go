package display

import (
	"errors"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"github.com/bonafide-sec/bonafide/agent/internal/fsx"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// The Linux reader follows the DRM sysfs interface: every connector of
// every card is /sys/class/drm/card<N>-<type>-<n> with the attributes
// status ("connected"), enabled ("enabled"), dpms ("On") and edid (the raw
// EDID, empty when none). Embedded connectors (eDP, LVDS, DSI) are the
// built-in panel. The lid state is ACPI's /proc/acpi/button/lid/*/state
// ("state:      open").

const (
	sysDRM   = "sys/class/drm"
	procLid  = "proc/acpi/button/lid"
	maxAttr  = 64
	maxConns = 64
)

var connectorName = regexp.MustCompile(`^card[0-9]+-([A-Za-z]+)-?[A-Za-z0-9-]*$`)

// internalTypes are the DRM connector types of built-in panels.
var internalTypes = map[string]bool{"eDP": true, "LVDS": true, "DSI": true}

func readSysfs(fsys fs.FS) (*agentv1.Displays, error) {
	out := &agentv1.Displays{Lid: readLid(fsys)}
	ents, err := fs.ReadDir(fsys, sysDRM)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return out, nil // no DRM driver (headless, or a VM without one)
		}
		return nil, err
	}
	for _, e := range ents {
		m := connectorName.FindStringSubmatch(e.Name())
		if m == nil || len(out.Displays) >= maxConns {
			continue
		}
		dir := path.Join(sysDRM, e.Name())
		raw, _ := fsx.ReadCapped(fsys, path.Join(dir, "edid"), MaxSize)
		if text(fsys, dir, "status") != "connected" && len(raw) == 0 {
			continue
		}
		d := FromEDID(e.Name(), raw)
		d.Internal = internalTypes[m[1]]
		d.Active = text(fsys, dir, "enabled") == "enabled" && text(fsys, dir, "dpms") != "Off"
		out.Displays = append(out.Displays, d)
	}
	return out, nil
}

// readLid returns the state of the first ACPI lid switch.
func readLid(fsys fs.FS) agentv1.LidState {
	ents, err := fs.ReadDir(fsys, procLid)
	if err != nil {
		return agentv1.LidState_LID_STATE_UNSPECIFIED
	}
	for _, e := range ents {
		s := text(fsys, path.Join(procLid, e.Name()), "state")
		switch strings.TrimSpace(strings.TrimPrefix(s, "state:")) {
		case "open":
			return agentv1.LidState_LID_STATE_OPEN
		case "closed":
			return agentv1.LidState_LID_STATE_CLOSED
		}
	}
	return agentv1.LidState_LID_STATE_UNSPECIFIED
}

func text(fsys fs.FS, dir, name string) string {
	b, err := fsx.ReadCapped(fsys, path.Join(dir, name), maxAttr)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
