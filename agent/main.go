// Command bonafide-agent reports the documented facts about this machine to
// a bonafide collector. It never reads keystrokes, screen contents, file
// contents or browsing history: the report schema in
// proto/bonafide/agent/v1/agent.proto is the complete list of what it sends.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/config"
	"github.com/bonafide-sec/bonafide/agent/internal/runner"
	"github.com/bonafide-sec/bonafide/agent/internal/scan"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"github.com/kardianos/service"
	"google.golang.org/protobuf/encoding/protojson"
)

// version is stamped by the Makefile from git.
var version = "dev"

const usage = `usage: bonafide-agent <command> [flags]

commands:
  scan [--json] [--root DIR]      scan this machine once and print what would be reported
  run [--root DIR] [--once | --service]
                                  run the agent (enrolls first when the config has enroll_secret);
                                  --service: under the OS service manager (the service's command line)
  enroll --collector HOST:PORT --secret S [--ca-fingerprint SHA256 | --ca-file PEM]
                                  enroll with a collector
  install | uninstall | start | stop | status
                                  manage the OS service (systemd, launchd, Windows SCM)
  version                         print the version (also --version)
  help                            this help

Every command takes --config FILE (default ` + "%s" + `)
and --state-dir DIR (default from the config, else ` + "%s" + `).
`

// commandHelp says what each command does, for its -h.
var commandHelp = map[string]string{
	"scan":      "Scan this machine once and print what would be reported; nothing is sent.",
	"run":       "Run the agent: scan, report and heartbeat on the collector's intervals, enrolling first\nwhen the config has enroll_secret.",
	"enroll":    "Enroll this machine with a collector and keep the certificate in the state directory.",
	"install":   "Install the agent as an OS service (systemd, launchd or the Windows service manager).",
	"uninstall": "Remove the agent's OS service.",
	"start":     "Start the agent's OS service.",
	"stop":      "Stop the agent's OS service.",
	"status":    "Print the state of the agent's OS service.",
	"version":   "Print the agent's version.",
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bonafide-agent:", err)
		os.Exit(1)
	}
}

type options struct {
	configPath string
	stateDir   string
	root       string
	json       bool
	once       bool
	service    bool
	collector  string
	secret     string
	caFP       string
	caFile     string
	logFormat  string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintf(stderr, usage, config.DefaultPath(), config.DefaultStateDir())
		return flag.ErrHelp
	}
	cmd := args[0]
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprintf(stdout, usage, config.DefaultPath(), config.DefaultStateDir())
		return nil
	case "--version", "-version":
		cmd = "version"
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: bonafide-agent %s [flags]\n\n%s\n\nflags:\n", cmd, commandHelp[cmd])
		fs.PrintDefaults()
	}
	var o options
	fs.StringVar(&o.configPath, "config", "", "configuration file (default "+config.DefaultPath()+")")
	fs.StringVar(&o.stateDir, "state-dir", "", "state directory: key, certificates, spool")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	switch cmd {
	case "scan":
		fs.BoolVar(&o.json, "json", false, "print the snapshot as JSON (protojson of HostSnapshot)")
		fs.StringVar(&o.root, "root", "/", "filesystem root to read the machine from")
	case "run":
		fs.StringVar(&o.root, "root", "/", "filesystem root to read the machine from")
		fs.BoolVar(&o.once, "once", false, "scan, deliver, and exit 0 once the collector acknowledged")
		fs.BoolVar(&o.service, "service", false, "run as the OS service (systemd, launchd, the Windows service manager): the service's command line has it")
	case "enroll":
		fs.StringVar(&o.collector, "collector", "", "collector gRPC address HOST:PORT")
		fs.StringVar(&o.secret, "secret", "", "enrollment secret")
		fs.StringVar(&o.caFP, "ca-fingerprint", "", "SHA-256 of the collector's CA certificate (bonafide-collector ca fingerprint)")
		fs.StringVar(&o.caFile, "ca-file", "", "PEM file with the collector's CA, instead of --ca-fingerprint")
		fs.StringVar(&o.root, "root", "/", "filesystem root to read the machine identity from")
	case "install", "uninstall", "start", "stop", "status", "version":
	default:
		fmt.Fprintf(stderr, usage, config.DefaultPath(), config.DefaultStateDir())
		return fmt.Errorf("unknown command %q", cmd)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", cmd, fs.Arg(0))
	}
	if o.once && o.service {
		return errors.New("run: --once and --service exclude each other")
	}
	if cmd == "version" {
		fmt.Fprintln(stdout, version)
		return nil
	}
	log := newLogger(stderr, o.logFormat)
	if cmd == "run" {
		// Settings an installer left outside the config file (the MSI's
		// properties in the Windows registry) move into it first.
		if err := config.ApplyInstallerSettings(cmp.Or(o.configPath, config.DefaultPath()), log); err != nil {
			return err
		}
	}
	cfg, err := loadConfig(o)
	if err != nil {
		return err
	}
	r := &runner.Runner{Cfg: cfg, Root: o.root, Version: version, Log: log}

	switch cmd {
	case "scan":
		return scanCmd(ctx, o, stdout)
	case "enroll":
		r.Cfg.Collector, r.Cfg.EnrollSecret = o.collector, o.secret
		if o.caFP != "" || o.caFile != "" {
			r.Cfg.CAFingerprint, r.Cfg.CAFile = o.caFP, o.caFile
		}
		e, err := r.Enroll(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "enrolled: agent %s, device %s, collector %s\n", e.AgentID, e.DeviceID, e.Collector)
		return nil
	case "run":
		switch {
		case o.once:
			return r.Once(ctx)
		case o.service:
			return runAsService(o, r.Run)
		case service.Interactive():
			return r.Run(ctx)
		}
		// A service installed before --service existed (its command line
		// is plain "run"), as kardianos/service judges it.
		return runService(o, r.Run)
	}
	return serviceCmd(cmd, o)
}

func loadConfig(o options) (config.Config, error) {
	path, explicit := o.configPath, o.configPath != ""
	if !explicit {
		path = config.DefaultPath()
	}
	cfg, err := config.Load(path, explicit)
	if err != nil {
		return cfg, err
	}
	if o.stateDir != "" {
		cfg.StateDir = o.stateDir
	}
	return cfg, nil
}

func newLogger(w io.Writer, format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

func scanCmd(ctx context.Context, o options, stdout io.Writer) error {
	sc := &scan.Scanner{Root: o.root, Version: version}
	sn, err := sc.Scan(ctx)
	if err != nil {
		return err
	}
	if o.json {
		b, err := protojson.MarshalOptions{Multiline: true}.Marshal(sn)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, string(b))
		return err
	}
	return printSnapshot(stdout, sn)
}

func printSnapshot(w io.Writer, sn *agentv1.HostSnapshot) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	id := sn.GetIdentity()
	os := id.GetOs()
	rows := [][2]string{
		{"hostname", id.GetHostname()},
		{"hardware uuid", id.GetHardwareUuid()},
		{"serial number", id.GetSerialNumber()},
		{"machine id", id.GetMachineId()},
		{"hardware", strings.TrimSpace(id.GetHardwareVendor() + " " + id.GetHardwareModel())},
		{"os", strings.TrimSpace(fmt.Sprintf("%s %s %s (%s, kernel %s)", os.GetName(), os.GetVersion(), os.GetBuild(), os.GetArch(), os.GetKernel()))},
		{"boot time", id.GetBootTime().AsTime().Local().Format(time.RFC3339)},
		{"agent version", id.GetAgentVersion()},
	}
	fmt.Fprintln(tw, "IDENTITY\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "  %s\t%s\n", r[0], r[1])
	}
	ra := sn.GetRemoteAccess()
	fmt.Fprintf(tw, "REMOTE ACCESS\t%d tools, %d OS features (catalog %.12s)\n", len(ra.GetTools()), len(ra.GetOsFeatures()), ra.GetCatalogVersion())
	for _, t := range ra.GetTools() {
		var ev []string
		for _, x := range []struct {
			n    int
			what string
		}{{len(t.GetInstalls()), "installed"}, {len(t.GetServices()), "service"}, {len(t.GetProcesses()), "running"},
			{len(t.GetListening()), "listening"}, {len(t.GetConnections()), "connected"}} {
			if x.n > 0 {
				ev = append(ev, x.what)
			}
		}
		if t.GetActiveSession() {
			ev = append(ev, "ACTIVE SESSION")
		}
		if id := t.GetClientId(); id != "" {
			ev = append(ev, "id "+id)
		}
		fmt.Fprintf(tw, "  %s\t%s (%s): %s\n", t.GetToolId(), t.GetName(), t.GetCategory(), strings.Join(ev, ", "))
	}
	for _, f := range ra.GetOsFeatures() {
		fmt.Fprintf(tw, "  %s\tenabled=%v listening=%v port=%d (%s)\n", f.GetKind(), f.GetEnabled(), f.GetListening(), f.GetPort(), f.GetSource())
	}
	printPeripherals(tw, sn)
	printMedia(tw, sn)
	printPosture(tw, sn)
	printPosition(tw, sn)
	fmt.Fprintln(tw, "SIGNALS\t")
	for _, s := range sn.GetSignals() {
		fmt.Fprintf(tw, "  %s\t%s %s\n", s.GetName(), strings.TrimPrefix(s.GetState().String(), "STATE_"), s.GetMessage())
	}
	return tw.Flush()
}

// printPosture prints the local admins, the accounts and the recorded
// remote-tool installs.
func printPosture(tw io.Writer, sn *agentv1.HostSnapshot) {
	p := sn.GetPosture()
	admins := "not read"
	if p.GetAdminsRead() {
		admins = fmt.Sprintf("%q", p.GetLocalAdmins())
	}
	fmt.Fprintf(tw, "POSTURE\tlocal admins %s, accounts %q\n", admins, p.GetInteractiveAccounts())
	for _, in := range p.GetToolInstalls() {
		fmt.Fprintf(tw, "  %s\tpackage %q installed by %q at %s (%s)\n", in.GetToolId(), in.GetPackage(), in.GetUser(),
			in.GetAt().AsTime().Format(time.RFC3339), in.GetSource())
	}
}

// printMedia prints the capture devices by name and the media-catalog
// findings, names quoted like the other device strings.
func printMedia(tw io.Writer, sn *agentv1.HostSnapshot) {
	m := sn.GetMedia()
	fmt.Fprintf(tw, "MEDIA\t%d devices\n", len(m.GetDevices()))
	for _, d := range m.GetDevices() {
		fmt.Fprintf(tw, "  %s %s\t%q\n", d.GetKind(), d.GetSource(), d.GetName())
	}
	for _, f := range m.GetFindings() {
		fmt.Fprintf(tw, "  %s\t%s (%s): %q\n", f.GetToolId(), f.GetName(), f.GetCategory(), f.GetDevice())
	}
}

// printPeripherals prints the USB devices, displays and KVM findings.
// Device-controlled strings are quoted so that they cannot drive the
// terminal.
func printPeripherals(tw io.Writer, sn *agentv1.HostSnapshot) {
	devs := sn.GetUsb().GetDevices()
	fmt.Fprintf(tw, "USB\t%d devices\n", len(devs))
	for _, d := range devs {
		var fn []string
		h := d.GetHid()
		for _, x := range []struct {
			on   bool
			name string
		}{{h.GetKeyboard(), "keyboard"}, {h.GetRelativeMouse(), "mouse"}, {h.GetAbsolutePointer(), "absolute pointer"},
			{h.GetDigitizer(), "digitizer"}, {d.GetMassStorage().GetCdrom(), "cd-rom"},
			{d.GetMassStorage() != nil && !d.GetMassStorage().GetCdrom(), "disk"}, {d.GetNetworkFunction(), "network"}} {
			if x.on {
				fn = append(fn, x.name)
			}
		}
		fmt.Fprintf(tw, "  %s\t%04x:%04x %q %q serial %q [%s]\n", d.GetLocation(), d.GetVendorId(), d.GetProductId(),
			d.GetManufacturer(), d.GetProduct(), d.GetSerial(), strings.Join(fn, ", "))
	}
	ds := sn.GetDisplays()
	fmt.Fprintf(tw, "DISPLAYS\t%d displays, lid %s\n", len(ds.GetDisplays()), strings.ToLower(strings.TrimPrefix(ds.GetLid().String(), "LID_STATE_")))
	for _, d := range ds.GetDisplays() {
		var state []string
		if d.GetInternal() {
			state = append(state, "internal")
		}
		if !d.GetActive() {
			state = append(state, "inactive")
		}
		fmt.Fprintf(tw, "  %q\t%s %04x %q serial %q/%08x %dx%d mm %s\n", d.GetConnector(), d.GetManufacturerId(), d.GetProductCode(),
			d.GetMonitorName(), d.GetSerialString(), d.GetSerialNumber(), d.GetWidthMm(), d.GetHeightMm(), strings.Join(state, " "))
	}
	p := sn.GetPeripherals()
	fmt.Fprintf(tw, "PERIPHERALS\t%d findings (catalog %.12s)\n", len(p.GetFindings()), p.GetCatalogVersion())
	for _, f := range p.GetFindings() {
		var fields []string
		for _, m := range f.GetFields() {
			fields = append(fields, fmt.Sprintf("%s=%q", m.GetField(), m.GetValue()))
		}
		fmt.Fprintf(tw, "  %s %q\t%s %s: %s\n", f.GetSource(), f.GetDevice(), f.GetKind(), f.GetFamily(), strings.Join(fields, " "))
	}
}

// printPosition prints the network position and the locale.
func printPosition(tw io.Writer, sn *agentv1.HostSnapshot) {
	n := sn.GetNetwork()
	fmt.Fprintf(tw, "NETWORK\t%d interfaces\n", len(n.GetInterfaces()))
	for _, i := range n.GetInterfaces() {
		state := "down"
		if i.GetUp() {
			state = "up"
		}
		vpn := ""
		if i.GetVpnToolId() != "" {
			vpn = " VPN " + i.GetVpnToolId()
		}
		fmt.Fprintf(tw, "  %q\t%s %s %s %s%s\n", i.GetName(), strings.ToLower(strings.TrimPrefix(i.GetKind().String(), "KIND_")),
			state, i.GetMac(), strings.Join(i.GetAddresses(), " "), vpn)
	}
	if r := n.GetDefaultRoute(); r != nil {
		fmt.Fprintf(tw, "  default route\tvia %s (%s) on %q\n", r.GetGateway(), r.GetGatewayMac(), r.GetInterface())
	}
	if w := n.GetWifi(); w.GetAvailable() && w.GetSsid() == "" && w.GetBssid() == "" {
		fmt.Fprintln(tw, "  wi-fi\tnot connected")
	} else if w.GetAvailable() {
		fmt.Fprintf(tw, "  wi-fi\t%q %s on %q\n", w.GetSsid(), w.GetBssid(), w.GetInterface())
	} else {
		fmt.Fprintf(tw, "  wi-fi\tunavailable: %s\n", w.GetReason())
	}
	fmt.Fprintf(tw, "  dns\t%s\n", strings.Join(n.GetDnsServers(), " "))
	ss := sn.GetSessions()
	fmt.Fprintf(tw, "SESSIONS\t%d current, %d in history\n", len(ss.GetCurrent()), len(ss.GetHistory()))
	for _, x := range append(ss.GetCurrent(), ss.GetHistory()...) {
		end := "open"
		if x.GetEndedAt() != nil {
			end = x.GetEndedAt().AsTime().UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "  %q\t%s %q from %q, %s – %s\n", x.GetUser(), strings.ToLower(strings.TrimPrefix(x.GetType().String(), "TYPE_")),
			x.GetTerminal(), x.GetSourceAddress(), x.GetStartedAt().AsTime().UTC().Format(time.RFC3339), end)
	}
	l := sn.GetLocale()
	fmt.Fprintf(tw, "LOCALE\t%s (UTC%+.1fh), %s\n", l.GetTimezone(), float64(l.GetUtcOffsetSeconds())/3600, l.GetSystemLocale())
	for _, k := range l.GetKeyboardLayouts() {
		kind := "layout"
		if k.GetInputMethod() {
			kind = "input method"
		}
		fmt.Fprintf(tw, "  %q\t%s %q (%s)\n", k.GetUser(), kind, k.GetLayout(), k.GetSource())
	}
}

// serviceName is the agent's service name: `install`'s (kardianos/service)
// and the MSI's Windows service.
const serviceName = "bonafide-agent"

// program adapts the runner to kardianos/service.
type program struct {
	run    func(context.Context) error
	cancel context.CancelFunc
	done   chan struct{}
}

func (p *program) Start(service.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		if err := p.run(ctx); err != nil {
			slog.Error("agent stopped", "err", err)
			os.Exit(1)
		}
	}()
	return nil
}

func (p *program) Stop(service.Service) error {
	p.cancel()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
	}
	return nil
}

func newService(o options, run func(context.Context) error) (service.Service, error) {
	args := []string{"run", "--service"}
	if o.configPath != "" {
		abs, err := filepath.Abs(o.configPath)
		if err != nil {
			return nil, err
		}
		args = append(args, "--config", abs)
	}
	if o.stateDir != "" {
		abs, err := filepath.Abs(o.stateDir)
		if err != nil {
			return nil, err
		}
		args = append(args, "--state-dir", abs)
	}
	return service.New(&program{run: run}, &service.Config{
		Name:        serviceName,
		DisplayName: "bonafide agent",
		Description: "Reports remote-access tools, USB/HID devices, displays, network position, locale, sessions and active hours to the bonafide collector.",
		Arguments:   args,
		Option:      service.KeyValue{"Restart": "always", "OnFailure": "restart", "DelayedAutoStart": true},
	})
}

func runService(o options, run func(context.Context) error) error {
	s, err := newService(o, run)
	if err != nil {
		return err
	}
	return s.Run()
}

func serviceCmd(cmd string, o options) error {
	s, err := newService(o, nil)
	if err != nil {
		return err
	}
	if cmd == "status" {
		st, err := s.Status()
		switch {
		case errors.Is(err, service.ErrNotInstalled):
			fmt.Println("not installed")
			return nil
		case err != nil:
			return fmt.Errorf("status (%s): %w", s.Platform(), err)
		}
		fmt.Println(map[service.Status]string{service.StatusRunning: "running", service.StatusStopped: "stopped"}[st])
		return nil
	}
	if err := service.Control(s, cmd); err != nil {
		return fmt.Errorf("%s (%s): %w", cmd, s.Platform(), err)
	}
	return nil
}
