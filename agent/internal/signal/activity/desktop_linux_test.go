package activity

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/signal/sessions"
	"github.com/bonafide-sec/bonafide/agent/internal/signal/sessions/seattest"
)

func TestMain(m *testing.M) {
	if p := os.Getenv(standInEnv); p != "" {
		if err := runStandIn(p); err != nil {
			fmt.Fprintln(os.Stderr, "stand-in:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// desktopBus is a private session bus of a desktop user under a machine
// root, as logind and the user's manager leave it: logind's state file of
// an active graphical session on seat0, and dbus-daemon at
// root/run/user/UID/bus. As root the user is nobody (65534), so that the
// agent's switch to the user is exercised; otherwise the test's own user.
// Stand-in desktops (standin_linux_test.go) join it as that user.
type desktopBus struct {
	root, addr string
	uid        uint32
	standIn    string // this test binary, where the bus's user can run it
	daemon     *proc
}

func startDesktopBus(t testing.TB) *desktopBus {
	t.Helper()
	seattest.RequireTools(t, "apt-get install dbus-daemon libglib2.0-bin", "dbus-daemon", "gdbus")
	root := t.TempDir()
	b := &desktopBus{root: root}
	b.uid, b.addr = seattest.Seat(t, root)

	// The test binary, copied where the bus's user may run it.
	self, err := os.Executable()
	must(t, err)
	b.standIn = filepath.Join(root, "standin.test")
	must(t, copyFile(self, b.standIn))

	b.daemon = b.start(t, "", "dbus-daemon", "--session", "--nofork", "--address="+b.addr, "--print-address")
	select {
	case l := <-b.daemon.lines:
		if !strings.HasPrefix(l, "unix:") {
			t.Fatalf("dbus-daemon: %s", l)
		}
	case <-time.After(time.Minute):
		t.Fatal("dbus-daemon did not start")
	}
	return b
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// start starts a process as the bus's user with the bus in its
// environment (and standInEnv=preset when preset is not empty), and stops
// it when the test ends (or stop is called). Its output lines arrive on
// the channel; the returned writer is its standard input.
func (b *desktopBus) start(t testing.TB, preset, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+b.addr)
	if preset != "" {
		cmd.Env = append(cmd.Env, standInEnv+"="+preset)
	}
	if b.uid != uint32(os.Getuid()) {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: b.uid, Gid: b.uid}}
	}
	in, err := cmd.StdinPipe()
	must(t, err)
	out, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = cmd.Stdout
	must(t, cmd.Start())
	lines, done := make(chan string, 16), make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody listening
			}
		}
		io.Copy(io.Discard, out)
	}()
	var once bool
	stop := func() {
		if once {
			return
		}
		once = true
		in.Close()
		cmd.Process.Kill()
		<-done
		cmd.Wait()
	}
	t.Cleanup(stop)
	return &proc{cmd: cmd, lines: lines, in: in, Stop: stop}
}

// proc is a process start started.
type proc struct {
	cmd   *exec.Cmd
	lines <-chan string
	in    io.Writer
	Stop  func()
}

// cpu is the CPU time the process used so far (/proc/PID/stat utime and
// stime, in clock ticks of 10 ms).
func (p *proc) cpu(t testing.TB) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	must(t, err)
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// standIn is a running stand-in desktop.
type standIn struct {
	*proc
	t testing.TB
}

// startStandIn starts a stand-in desktop (a standInPresets key) on the
// bus and waits until it owns its name.
func (b *desktopBus) startStandIn(t testing.TB, preset string) *standIn {
	t.Helper()
	s := &standIn{proc: b.start(t, preset, b.standIn, "-test.run=^$"), t: t}
	s.expect("ready")
	return s
}

func (s *standIn) expect(want string) {
	s.t.Helper()
	select {
	case l := <-s.lines:
		if l != want {
			s.t.Fatalf("stand-in said %q, want %q", l, want)
		}
	case <-time.After(time.Minute):
		s.t.Fatalf("stand-in did not say %q", want)
	}
}

// Send sends a command and waits for its "ok".
func (s *standIn) Send(cmd string) {
	s.t.Helper()
	if _, err := io.WriteString(s.in, cmd+"\n"); err != nil {
		s.t.Fatal(err)
	}
	s.expect("ok")
}

// read reads d once with a generous deadline.
func read(t testing.TB, f IdleFunc) (time.Duration, bool, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return f(ctx)
}

// TestDesktopIdleSessionBus reads the idle time the way the agent does on
// Linux: finding the person at the screen in logind's files under the
// root, and calling their desktop's idle-time method on their session bus
// with gdbus, as them (the test is root: the user is nobody). Mutter's
// IdleMonitor and KDE's kscreenlocker answer; the freedesktop name's other
// owners (seconds since the session went idle) and kscreenlocker on
// Wayland (NotSupported) give no reading, and a session with no desktop
// that answers is not asked again for a minute.
func TestDesktopIdleSessionBus(t *testing.T) {
	bus := startDesktopBus(t)
	d := newDesktopIdle(bus.root)
	now := time.Now()
	d.now = func() time.Time { return now }

	// Nobody answers: no reading, no error.
	if v, ok, err := read(t, d.idle); ok || err != nil {
		t.Fatalf("no desktop: %v %v %v", v, ok, err)
	}
	// The freedesktop name's owner is not asked; KDE on Wayland refuses.
	fd := bus.startStandIn(t, "freedesktop")
	fd.Send("set 120")
	kw := bus.startStandIn(t, "kscreenlocker-wayland")
	now = now.Add(noDesktopRetry)
	if v, ok, err := read(t, d.idle); ok || err != nil {
		t.Fatalf("freedesktop and kscreenlocker on Wayland: %v %v %v", v, ok, err)
	}
	kw.Stop()

	// KDE on X11: milliseconds as uint32. Not asked until the retry.
	kde := bus.startStandIn(t, "kscreenlocker")
	kde.Send("set 7250")
	if _, ok, _ := read(t, d.idle); ok {
		t.Fatal("asked again before noDesktopRetry")
	}
	now = now.Add(noDesktopRetry)
	if v, ok, err := read(t, d.idle); !ok || err != nil || v != 7250*time.Millisecond {
		t.Fatalf("kscreenlocker: %v %v %v", v, ok, err)
	}

	// GNOME: milliseconds as uint64. The source that answered is asked
	// first; once it is gone, Mutter is.
	gnome := bus.startStandIn(t, "mutter")
	gnome.Send("set 42500")
	if v, _, _ := read(t, d.idle); v != 7250*time.Millisecond {
		t.Fatalf("kscreenlocker no longer asked first: %v", v)
	}
	kde.Stop()
	if v, ok, err := read(t, d.idle); !ok || err != nil || v != 42500*time.Millisecond {
		t.Fatalf("mutter: %v %v %v", v, ok, err)
	}
	// Past what a Duration holds: capped, not wrapped.
	gnome.Send("set 18446744073709551615")
	if v, ok, err := read(t, d.idle); !ok || err != nil || v != time.Duration(maxIdleMillis)*time.Millisecond {
		t.Fatalf("huge idle: %v %v %v", v, ok, err)
	}

	// The minute and rhythm readers under a fixture root are the desktop
	// alone (loginctl would read the live system).
	idle, rhythm := Readers(bus.root)
	gnome.Send("set 1500")
	for _, f := range []IdleFunc{idle, rhythm} {
		if v, ok, err := read(t, f); !ok || err != nil || v != 1500*time.Millisecond {
			t.Fatalf("Readers: %v %v %v", v, ok, err)
		}
	}

	// A desktop answering something else is an error, not a reading.
	gnome.Send("garbage")
	if v, ok, err := read(t, d.idle); ok || err == nil || !strings.Contains(err.Error(), "unexpected gdbus reply") {
		t.Fatalf("garbage: %v %v %v", v, ok, err)
	}

	// A runtime directory that is not the user's: refused before any call.
	dir := filepath.Join(bus.root, "run/user", strconv.FormatUint(uint64(bus.uid), 10))
	if os.Getuid() == 0 {
		must(t, os.Chown(dir, 0, 0))
		if _, ok, err := read(t, d.idle); ok || err == nil || !strings.Contains(err.Error(), "not a directory owned by") {
			t.Fatalf("foreign runtime directory: %v %v", ok, err)
		}
		must(t, os.Chown(dir, int(bus.uid), int(bus.uid)))
	}
	// Nobody at the screen: no reading, no error.
	must(t, os.WriteFile(filepath.Join(bus.root, "run/systemd/sessions/2"), []byte("UID=1000\nSTATE=online\nTYPE=wayland\nSEAT=seat0\n"), 0o644))
	if _, ok, err := read(t, d.idle); ok || err != nil {
		t.Fatalf("nobody at the screen: %v %v", ok, err)
	}
}

// TestRhythmDesktopBus: the jiggler rhythm through the Linux reader. Every
// RhythmInterval of simulated time the test sets the stand-in desktop's
// idle time to what a machine would show, and the agent reads it over the
// session bus with gdbus and feeds the recorder (as Run does): a jiggler
// that moves the pointer after 60 s ±25 % of idleness (PiKVM's, kvmd's
// plugins/hid jiggler) through Mutter, one after exactly 15 s through
// KDE's kscreenlocker, and a person (bursts of input between pauses of
// 10 s to 10 min) through Mutter. The jigglers' hours come out periodic,
// the person's irregular, and two jiggler hours make the collector's
// jiggler_rhythm condition true (policies/rules/activity.yaml: 2 hours,
// 20 resumptions, CV ≤ 0.2).
func TestRhythmDesktopBus(t *testing.T) {
	bus := startDesktopBus(t)
	gnome := bus.startStandIn(t, "mutter")
	start := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	c := &clock{t: start.Add(3 * time.Hour)}
	r := openTest(t, filepath.Join(t.TempDir(), "activity.json"), 0, c)
	rng := rand.New(rand.NewPCG(5, 6))

	var pikvm, every15, person []time.Duration
	for at := 7 * time.Second; at < time.Hour; at += time.Duration(45+rng.IntN(31)) * time.Second {
		pikvm = append(pikvm, at)
	}
	for at := 15 * time.Second; at < time.Hour; at += 15 * time.Second {
		every15 = append(every15, at)
	}
	for at := time.Second; at < time.Hour; {
		for range 1 + rng.IntN(30) {
			person = append(person, at)
			at += time.Second
		}
		at += time.Duration(10+rng.IntN(590)) * time.Second
	}
	overBus := func(s *standIn, inputs []time.Duration, hour time.Time, d *desktopIdle) {
		t.Helper()
		var last time.Duration
		i := 0
		r.Observe(hour, 0, false) // each hour its own run: input at its start
		for at := time.Duration(0); at < time.Hour; at += RhythmInterval {
			for i < len(inputs) && inputs[i] <= at {
				last = inputs[i]
				i++
			}
			s.Send("set " + strconv.FormatInt((at-last).Milliseconds(), 10))
			v, ok, err := read(t, d.idle)
			if err != nil || !ok {
				t.Fatalf("reading at %v: %v %v", at, ok, err)
			}
			r.Observe(hour.Add(at), v, ok)
			if at%time.Minute == 0 {
				mustSample(t, r, hour.Add(at), v, ok)
			}
		}
	}
	d := newDesktopIdle(bus.root)
	overBus(gnome, pikvm, start, d)
	gnome.Stop()
	kde := bus.startStandIn(t, "kscreenlocker")
	overBus(kde, every15, start.Add(time.Hour), d)
	kde.Stop()
	gnome = bus.startStandIn(t, "mutter")
	overBus(gnome, person, start.Add(2*time.Hour), d)

	hours := r.Snapshot().GetHours()
	if len(hours) != 3 {
		t.Fatalf("%d hours", len(hours))
	}
	for _, h := range hours {
		t.Logf("%s: %d resumptions, mean gap %.1f s, CV %.3f", h.GetHour().AsTime().Format("15:04"), h.GetResumptions(), h.GetResumeGapMeanSeconds(), h.GetResumeGapCv())
	}
	pk, fifteen, p := hours[0], hours[1], hours[2]
	if pk.GetResumptions() < 50 || pk.GetResumptions() > 70 || pk.GetResumeGapCv() > 0.2 {
		t.Errorf("PiKVM jiggler: %v", pk)
	}
	if fifteen.GetResumptions() < 230 || fifteen.GetResumptions() > 240 || fifteen.GetResumeGapCv() > 0.01 ||
		fifteen.GetResumeGapMeanSeconds() < 14.5 || fifteen.GetResumeGapMeanSeconds() > 15.5 {
		t.Errorf("15 s jiggler: %v", fifteen)
	}
	if p.GetResumptions() < 5 || p.GetResumeGapCv() < 0.4 {
		t.Errorf("person: %v", p)
	}
	// The collector rule's condition (jiggler_rhythm's params).
	periodic := 0
	for _, h := range hours {
		if h.GetResumptions() >= 20 && h.GetResumeGapCv() <= 0.2 {
			periodic++
		}
	}
	if periodic != 2 {
		t.Errorf("%d periodic hours, want the two jiggler hours", periodic)
	}
}

// TestRunDesktopBusLive runs the recorder as the agent does, in real time,
// with this OS's readers under the fixture root: a stand-in Mutter whose
// idle time resets every 12 s of real time (a jiggler) is read every
// RhythmInterval, and the resumptions it sees come 12 s apart. It takes
// about half a minute.
func TestRunDesktopBusLive(t *testing.T) {
	bus := startDesktopBus(t)
	gnome := bus.startStandIn(t, "mutter")
	gnome.Send("live 12000")
	r, err := Open(filepath.Join(t.TempDir(), "activity.json"), 0)
	must(t, err)
	idle, rhythm := Readers(bus.root)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx, idle, rhythm, nil); close(done) }()
	defer func() { cancel(); <-done }()

	var n uint32
	var sum, sampled float64
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
		r.mu.Lock()
		n, sum, sampled = 0, 0, 0
		for _, h := range r.hours {
			n += h.Resumes
			sum += h.GapSum
			sampled += float64(bits.OnesCount64(h.Sampled))
		}
		r.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d resumptions after 3 minutes", n)
		}
	}
	// Each gap is 12 s give or take the difference of two calls' latency;
	// a stall of more than 7 s between two readings would merge two.
	if mean := sum / float64(n); mean < 10 || mean > 16 || sampled < 1 {
		t.Errorf("%d resumptions, mean gap %.1f s, %v minutes sampled; want gaps of 12 s", n, mean, sampled)
	}
}

// BenchmarkDesktopIdle measures one Linux idle reading as the agent takes
// it every RhythmInterval: find the person at the screen, run gdbus as
// them against a stand-in Mutter on a private session bus, parse. Besides
// ns/op (wall) it reports the CPU time per reading of the agent
// (agent-cpu-ns), of the gdbus processes it ran (gdbus-cpu-ns), of the
// bus side (bus-cpu-ns: dbus-daemon and the stand-in, 10 ms ticks), and
// what a reading every RhythmInterval costs the agent and its gdbus a day,
// in percent of one core (core-%). "floor" runs /bin/true the same way
// (as the user, through cmdx): the cost of any process; "no-desktop" is a
// session whose desktop answered nothing (a cached miss, no process).
func BenchmarkDesktopIdle(b *testing.B) {
	bus := startDesktopBus(b)
	gnome := bus.startStandIn(b, "mutter")
	gnome.Send("set 1000")
	seat, err := sessions.LinuxSeatBus(bus.root)
	must(b, err)
	ctx := context.Background()
	run := func(b *testing.B, read func() error) {
		var s0, c0, s1, c1 syscall.Rusage
		busCPU := func() time.Duration { return bus.daemon.cpu(b) + gnome.cpu(b) }
		bus0 := busCPU()
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &s0)
		_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &c0)
		for b.Loop() {
			must(b, read())
		}
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &s1)
		_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &c1)
		cpu := func(a, z *syscall.Rusage) float64 {
			return float64(z.Utime.Nano()-a.Utime.Nano()+z.Stime.Nano()-a.Stime.Nano()) / float64(b.N)
		}
		self, kids := cpu(&s0, &s1), cpu(&c0, &c1)
		b.ReportMetric(self, "agent-cpu-ns/op")
		b.ReportMetric(kids, "gdbus-cpu-ns/op")
		b.ReportMetric(float64(busCPU()-bus0)/float64(b.N), "bus-cpu-ns/op")
		b.ReportMetric(100*(self+kids)/float64(RhythmInterval), "core-%")
	}
	b.Run("mutter", func(b *testing.B) {
		d := newDesktopIdle(bus.root)
		run(b, func() error {
			_, ok, err := d.idle(ctx)
			if !ok && err == nil {
				err = fmt.Errorf("no reading")
			}
			return err
		})
	})
	b.Run("floor", func(b *testing.B) {
		run(b, func() error {
			_, err := seat.Run(ctx, desktopCmdTimeout, desktopMaxOutput, "/bin/true")
			return err
		})
	})
	b.Run("no-desktop", func(b *testing.B) {
		gnome.Send("garbage") // any error: the miss is then cached
		d := newDesktopIdle(bus.root)
		d.source, d.session, d.retryAt = -1, "2/"+strconv.FormatUint(uint64(bus.uid), 10), time.Now().Add(time.Hour)
		run(b, func() error {
			_, _, err := d.idle(ctx)
			return err
		})
		gnome.Send("set 1000")
	})
}
