package posture

import (
	"context"
	"testing"
)

// TestReadLiveWindows reads this machine's profiles and local
// Administrators group: the group always has a member (the built-in
// Administrator account, even when disabled).
func TestReadLiveWindows(t *testing.T) {
	p, err := readLive(context.Background(), Tools{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.GetAdminsRead() || len(p.GetLocalAdmins()) == 0 {
		t.Errorf("admins %q (read %v)", p.GetLocalAdmins(), p.GetAdminsRead())
	}
	t.Logf("admins %q, accounts %q", p.GetLocalAdmins(), p.GetInteractiveAccounts())
}

// TestWinMsiEventsLive queries the Application log for MsiInstaller
// install events; every one returned is one.
func TestWinMsiEventsLive(t *testing.T) {
	events, err := winMsiEvents(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range events {
		if ev, err := parseMsiEvent(b); err != nil || ev.ID != msiEventInstalled {
			t.Errorf("event %v (%v):\n%s", ev, err, b)
		}
	}
	t.Logf("%d MsiInstaller install events", len(events))
}

// TestWinLookupSID names the well-known SYSTEM account by its short name.
func TestWinLookupSID(t *testing.T) {
	if got := winLookupSID("S-1-5-18", "LAPTOP-7"); got != "SYSTEM" {
		t.Errorf("S-1-5-18: %q", got)
	}
	if got := winLookupSID("not a SID", "LAPTOP-7"); got != "" {
		t.Errorf("bad SID: %q", got)
	}
}
