package remoteaccess

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/policies"
)

// TestReadInventoryFixtureRoot reads testdata/root-linux through the live
// reader (os.DirFS), with the links made real in a temporary copy.
func TestReadInventoryFixtureRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(filepath.Join("testdata", "root-linux"))); err != nil {
		t.Fatal(err)
	}
	for name, target := range fixtureLinks() {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	inv, err := readInventory(context.Background(), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkFixtureInventory(t, inv)
}

// startRenamed copies /bin/sleep to dir/name and runs it.
func startRenamed(t testing.TB, dir, name string) *exec.Cmd {
	t.Helper()
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		src, err := os.Open("/bin/sleep")
		if err != nil {
			t.Skipf("no /bin/sleep: %v", err)
		}
		defer src.Close()
		dst, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(p, "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// waitExec waits until the kernel shows pid running path (after fork and
// before exec it is still the test binary).
func waitExec(t testing.TB, pid int, path string) {
	t.Helper()
	for range 200 {
		if exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe")); err == nil && exe == path {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("pid %d never ran %s", pid, path)
}

// TestCollectLiveProcesses runs renamed copies of sleep and a real TCP
// listener and collects the live system: anydesk and rustdesk are found
// with their pids, the look-alikes are not, and the test binary's own
// listener and accepted connection are reported for a tool whose catalog
// entry names the test binary and the listener's port.
func TestCollectLiveProcesses(t *testing.T) {
	dir := t.TempDir()
	want := map[string]int32{}
	for _, n := range []string{"anydesk", "rustdesk"} {
		cmd := startRenamed(t, dir, n)
		waitExec(t, cmd.Process.Pid, filepath.Join(dir, n))
		want[n] = int32(cmd.Process.Pid)
	}
	lookalikes := map[int32]string{}
	for _, n := range []string{"anydesk2", "xanydesk", "rustdesk-helper"} {
		cmd := startRenamed(t, dir, n)
		waitExec(t, cmd.Process.Pid, filepath.Join(dir, n))
		lookalikes[int32(cmd.Process.Pid)] = n
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cat := testCatalog()
	cat.Tools = append(cat.Tools,
		policies.Tool{ID: "rustdesk", Name: "RustDesk", Category: policies.CategoryRemoteDesktop, Linux: policies.OSMatch{Processes: []string{"rustdesk"}}},
		// The test binary's name is longer than comm's 15 bytes: found
		// only because the name is completed from /proc/<pid>/exe.
		policies.Tool{ID: "this_test", Name: "this test", Category: policies.CategoryRemoteDesktop,
			Linux: policies.OSMatch{Processes: []string{filepath.Base(exe)}},
			Ports: []policies.Port{{Protocol: "tcp", Port: port, Listen: true}}},
	)

	ra, err := (&Collector{Root: "/", Catalog: cat}).Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range ra.Tools {
		for _, p := range tool.Processes {
			if n, ok := lookalikes[p.Pid]; ok {
				t.Errorf("look-alike %s (pid %d) matched as %s", n, p.Pid, tool.ToolId)
			}
		}
	}
	for name, pid := range want {
		tool := findTool(ra, name)
		if tool == nil {
			t.Fatalf("%s not found; tools %v", name, toolIDs(ra))
		}
		var pids []int32
		for _, p := range tool.Processes {
			pids = append(pids, p.Pid)
		}
		if !slices.Contains(pids, pid) {
			t.Errorf("%s: pids %v, want %d among them", name, pids, pid)
		}
		for _, p := range tool.Processes {
			if p.Pid == pid && (p.Path != filepath.Join(dir, name) || p.StartedAt == nil || p.User == "") {
				t.Errorf("%s: evidence %v", name, p)
			}
		}
	}

	self := findTool(ra, "this_test")
	if self == nil {
		t.Fatalf("test binary not found; tools %v", toolIDs(ra))
	}
	me := int32(os.Getpid())
	if len(self.Listening) != 1 || self.Listening[0].Pid != me || self.Listening[0].LocalPort != uint32(port) || self.Listening[0].LocalAddress != "127.0.0.1" {
		t.Errorf("listening %v", self.Listening)
	}
	// Only this process's two ends count: another process on the machine
	// may use the same port number on another loopback address.
	var mine int
	for _, c := range self.Connections {
		if c.Pid == me {
			mine++
		}
	}
	if mine != 2 || !self.ActiveSession {
		t.Errorf("connections %v active %v, want 2 of pid %d", self.Connections, self.ActiveSession, me)
	}
}

// BenchmarkCollectLinux collects the live system with the shipped catalog
// while at least 500 processes exist. Besides ns/op it reports the CPU
// time (user+system) one Collect costs.
func BenchmarkCollectLinux(b *testing.B) {
	cat, err := policies.RemoteAccess(policies.FS())
	if err != nil {
		b.Fatal(err)
	}
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		if e.Name()[0] >= '0' && e.Name()[0] <= '9' {
			n++
		}
	}
	for i := n; i < 500; i++ {
		cmd := exec.Command("/bin/sleep", "600")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	c := &Collector{Root: "/", Catalog: cat}
	ctx := context.Background()
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	procs := 0
	for b.Loop() {
		if _, err := c.Collect(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()-before.Utime.Nano()) + time.Duration(after.Stime.Nano()-before.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	if inv, err := readInventory(ctx, "/", nil); err == nil {
		procs = len(inv.Processes)
	}
	b.ReportMetric(float64(procs), "procs")
}
