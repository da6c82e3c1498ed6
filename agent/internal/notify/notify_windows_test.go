package notify

import (
	"context"
	"testing"
	"time"
)

// TestShowWindowsConsole puts the presence message box on the console
// session without waiting for it (WTSSendMessageW with bWait FALSE). Wine
// 8 has WTSSendMessageW as a stub that fails (see
// scripts/wine-known-gaps.txt).
func TestShowWindowsConsole(t *testing.T) {
	n := &Notifier{}
	m := Presence("https://bonafide.example.com", time.Now().Add(10*time.Minute), time.Now())
	if err := n.Show(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}
