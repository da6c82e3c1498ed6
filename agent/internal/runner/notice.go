package runner

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/notify"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// noticeFile keeps the presence checks already notified, one "ID
// EXPIRES-UNIX" line each, so that a check is notified once even across
// runs (run --once, a restart).
const noticeFile = "presence.notified"

// maxNotices bounds the checks remembered; maxNoticeAhead how far ahead a
// check's expiry may lie (a collector's default is 10 minutes).
const (
	maxNotices     = 32
	maxNoticeAhead = 24 * time.Hour
)

var checkIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// notifyPresence shows the person at the laptop a notification of a
// presence check that waits for them, once per check, in the background:
// it never holds up the scan or the delivery. A notice that does not
// validate (id, expiry) is ignored; its origin is shown only when valid
// (notify.Presence).
func (r *Runner) notifyPresence(ctx context.Context, n *agentv1.PresenceCheckNotice) {
	if n == nil || r.notifier == nil {
		return
	}
	now := time.Now()
	id, expires := n.GetCheckId(), n.GetExpiresAt().AsTime()
	if !checkIDPattern.MatchString(id) || !n.GetExpiresAt().IsValid() || !expires.After(now) || expires.After(now.Add(maxNoticeAhead)) {
		r.Log.Warn("collector sent a presence notice that does not validate; ignoring it")
		return
	}
	first, err := r.rememberNotice(id, expires, now)
	if err != nil {
		r.Log.Error("presence notice: cannot remember it; not notifying (it would be shown again)", "err", err)
		return
	}
	if !first {
		return
	}
	m := notify.Presence(n.GetOrigin(), expires, now)
	r.notifying.Add(1)
	go func() {
		defer r.notifying.Done()
		if err := r.notifier.Show(ctx, m); err != nil {
			r.Log.Warn("presence check: could not notify the person at the laptop", "check", id, "err", err)
			return
		}
		r.Log.Info("presence check: notified the person at the laptop", "check", id)
	}()
}

// rememberNotice records a check as notified; false when it already was.
// Checks past their expiry are forgotten.
func (r *Runner) rememberNotice(id string, expires, now time.Time) (bool, error) {
	path := filepath.Join(r.Cfg.StateDir, noticeFile)
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return false, err
	}
	var keep []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		exp, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || time.Unix(exp, 0).Before(now) {
			continue
		}
		if f[0] == id {
			return false, nil
		}
		keep = append(keep, sc.Text())
	}
	keep = append(keep, fmt.Sprintf("%s %d", id, expires.Unix()))
	if len(keep) > maxNotices {
		keep = keep[len(keep)-maxNotices:]
	}
	if err := os.WriteFile(path+".tmp", []byte(strings.Join(keep, "\n")+"\n"), 0o600); err != nil {
		return false, err
	}
	return true, os.Rename(path+".tmp", path)
}
