package posture

import (
	"context"
	"testing"
)

// TestReadLiveWindows reads this machine's profiles and local
// Administrators group: the group always has a member (the built-in
// Administrator account, even when disabled).
func TestReadLiveWindows(t *testing.T) {
	p, err := readLive(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !p.GetAdminsRead() || len(p.GetLocalAdmins()) == 0 {
		t.Errorf("admins %q (read %v)", p.GetLocalAdmins(), p.GetAdminsRead())
	}
	t.Logf("admins %q, accounts %q", p.GetLocalAdmins(), p.GetInteractiveAccounts())
}
