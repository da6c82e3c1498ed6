//go:build linux || darwin

package scan

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// TestScanDeadlineCutsOffAHungSignal: a fixture root whose keyboard file
// is a FIFO nobody writes to makes the locale signal hang in open(2),
// where no context reaches, as a hung file system would. The scan still
// returns at its deadline, with the families read before it OK, locale
// (and sessions, which had no time left) in error.
func TestScanDeadlineCutsOffAHungSignal(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../hostid/testdata/root-debian")); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "etc/default/keyboard")
	os.MkdirAll(filepath.Dir(fifo), 0o755)
	os.Remove(fifo)
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	// Release the stuck reader at the end: opening the write side lets its
	// open return, and closing it gives it end of file.
	t.Cleanup(func() {
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})

	// Long enough for the healthy signals under the race detector on a
	// loaded machine (1 s cut off the network signal there); the hung
	// one blocks for ever, so any deadline shows the cut.
	const deadline = 8 * time.Second
	s := &Scanner{Root: dir, Timeout: deadline}
	start := time.Now()
	sn, err := s.Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 6*deadline {
		t.Fatalf("scan took %v with a %v deadline", d, deadline)
	}
	states := map[string]*agentv1.SignalStatus{}
	for _, st := range sn.Signals {
		states[st.Name] = st
	}
	for _, name := range []string{"identity", "usb", "display", "peripherals", "network"} {
		if st := states[name]; st.GetState() != agentv1.SignalStatus_STATE_OK {
			t.Errorf("%s: %v", name, st)
		}
	}
	for _, name := range []string{"locale", "sessions"} {
		st := states[name]
		if st.GetState() != agentv1.SignalStatus_STATE_ERROR || !strings.Contains(st.GetMessage(), "scan deadline") {
			t.Errorf("%s: %v", name, st)
		}
	}
	if sn.GetIdentity().GetHostname() == "" || sn.Locale != nil {
		t.Errorf("identity %v, locale %v", sn.GetIdentity(), sn.Locale)
	}
}
