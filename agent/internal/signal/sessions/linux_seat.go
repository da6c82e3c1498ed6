package sessions

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
)

// ErrNoSeatUser is returned when nobody is logged in to a graphical
// session on the machine's own screen.
var ErrNoSeatUser = errors.New("no active graphical session on a local seat")

// SeatUser is the person at the machine's screen: the user of the
// graphical session logind shows on a local seat.
type SeatUser struct {
	UID     uint32
	Name    string
	Session string
}

// LinuxSeatUser finds the user of the active graphical session on a local
// seat in logind's state files under root (run/systemd/sessions): a user
// session in state active, of type x11, wayland or mir, on a seat, not
// remote. Of several (several seats), the first in file-name order.
func LinuxSeatUser(root string) (SeatUser, error) {
	if root == "" {
		root = "/"
	}
	fsys := os.DirFS(root)
	ents, err := fs.ReadDir(fsys, linuxLogindDir)
	if err != nil {
		return SeatUser{}, fmt.Errorf("sessions: %s: %w", linuxLogindDir, err)
	}
	for i, e := range ents {
		if i >= maxLogindSessions {
			break
		}
		if !e.Type().IsRegular() || strings.Contains(e.Name(), ".") {
			continue
		}
		data, err := readFileLimit(fsys, path.Join(linuxLogindDir, e.Name()), maxLogindFile)
		if err != nil {
			continue
		}
		s := parseLogindSession(e.Name(), data)
		uid, err := strconv.ParseUint(s.UID, 10, 32)
		if err != nil || !s.isUserSession() || s.State != "active" || s.Remote || s.Seat == "" ||
			(s.Type != "x11" && s.Type != "wayland" && s.Type != "mir") {
			continue
		}
		return SeatUser{UID: uint32(uid), Name: s.User, Session: s.ID}, nil
	}
	return SeatUser{}, ErrNoSeatUser
}
