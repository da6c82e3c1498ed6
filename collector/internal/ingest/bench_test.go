package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"github.com/google/uuid"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// benchDevices is how many enrolled devices report in the benchmarks.
const benchDevices = 100

// BenchmarkIngest measures full snapshots per second through Report:
// validation, digests, rule evaluation (the default rules) and storage in
// one transaction per call. Every snapshot differs from the device's
// previous one, so each is stored and appended to the history. Reports come
// from 100 enrolled devices over many goroutines, as from many agents at
// once. Not measured: TLS, gRPC decoding and the authentication
// interceptor's agent lookup.
//
// BenchmarkIngest's snapshots look like a farm laptop: AnyDesk running with
// an inbound session, Chrome Remote Desktop, Astrill and RDP, so five
// remote-access rules fire and upsert their alerts on every snapshot.
// BenchmarkIngestQuiet sends the same snapshots without remote-access
// findings, as most of a fleet reports.
func BenchmarkIngest(b *testing.B) {
	benchEngines(b, benchFarm)
}

// BenchmarkIngestQuiet is BenchmarkIngest with snapshots on which no
// snapshot rule fires.
func BenchmarkIngestQuiet(b *testing.B) {
	benchEngines(b, benchQuiet)
}

// BenchmarkIngestHeartbeat is BenchmarkIngest with heartbeats, the report
// an unchanged machine sends.
func BenchmarkIngestHeartbeat(b *testing.B) {
	benchEngines(b, benchHeartbeat)
}

// BenchmarkIngestCluster is BenchmarkIngestQuiet where every snapshot
// moves its device into or out of a farm: the devices are in groups of
// eight, and each snapshot switches between the device's own Wi-Fi access
// point and its group's. Every report therefore changes the device's keys
// and updates the clusters incrementally: the keys are replaced, the
// device's cluster and its former one are found again, the membership
// changes are recorded, and the other members are evaluated again (the
// fleet rules fire and resolve as the farm forms and breaks up). It is
// the worst case of the incremental update per report.
func BenchmarkIngestCluster(b *testing.B) {
	benchEngines(b, benchCluster)
}

type benchMode int

const (
	benchFarm benchMode = iota
	benchQuiet
	benchHeartbeat
	benchCluster
)

func benchEngines(b *testing.B, mode benchMode) {
	b.Run("sqlite", func(b *testing.B) { benchReport(b, filepath.Join(b.TempDir(), "bonafide.db"), mode) })
	b.Run("postgres", func(b *testing.B) { benchReport(b, storetest.PostgresDSN(b), mode) })
}

// benchAgent is one enrolled device and what it reports.
type benchAgent struct {
	ctx   context.Context // carries the authenticated agent and its peer address
	snap  *agentv1.HostSnapshot
	seq   uint64
	group int // the device's farm (BenchmarkIngestCluster)
}

func benchReport(b *testing.B, dsn string, mode benchMode) {
	snapshots := mode != benchHeartbeat
	ctx := context.Background()
	st := storetest.Open(b, dsn)
	rules, err := detect.Load(policies.FS())
	if err != nil {
		b.Fatal(err)
	}
	svc, err := New(st, nil, rules, Config{ScanInterval: 15 * time.Minute, HeartbeatInterval: time.Minute, CheckInInterval: time.Hour},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	_, sec, err := st.CreateSecret(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	agents := make([]*benchAgent, benchDevices)
	for i := range agents {
		agents[i] = enrollBenchAgent(b, st, sec.ID, i, mode == benchQuiet || mode == benchCluster)
	}

	// Each goroutine owns some devices, so that one device's reports come
	// one after another, as from its single agent.
	par := max(1, min(8, benchDevices/runtime.GOMAXPROCS(0)))
	workers := par * runtime.GOMAXPROCS(0)
	var nextWorker atomic.Int64
	b.SetParallelism(par)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := int(nextWorker.Add(1) - 1)
		var mine []*benchAgent
		for i := w; i < benchDevices; i += workers {
			mine = append(mine, agents[i])
		}
		if len(mine) == 0 { // more goroutines than devices
			mine = agents[w%benchDevices : w%benchDevices+1]
		}
		for n := 0; pb.Next(); n++ {
			a := mine[n%len(mine)]
			a.seq++
			rep := &agentv1.Report{ReportId: uuid.NewString(), Sequence: a.seq, CreatedAt: timestamppb.Now()}
			if snapshots {
				a.change()
				if mode == benchCluster {
					a.move()
				}
				rep.Body = &agentv1.Report_Snapshot{Snapshot: a.snap}
			} else {
				rep.Body = &agentv1.Report_Heartbeat{Heartbeat: &agentv1.Heartbeat{
					SnapshotDigest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Identity: a.snap.GetIdentity()}}
			}
			resp, err := svc.Report(a.ctx, &agentv1.ReportRequest{Reports: []*agentv1.Report{rep}})
			if err != nil {
				b.Errorf("Report: %v", err)
				return
			}
			if len(resp.GetAckedReportIds()) != 1 {
				b.Errorf("acked %v", resp.GetAckedReportIds())
				return
			}
		}
	})
	b.StopTimer()
	// Every report was stored, and each device's latest snapshot is the
	// last one it sent.
	var stored int64
	for _, a := range agents {
		dev := a.ctx.Value(agentKey{}).(store.Agent).DeviceID
		n, err := st.ReportCount(ctx, dev)
		if err != nil {
			b.Fatal(err)
		}
		stored += n
		if snapshots && a.seq > 0 {
			sn, err := st.LatestSnapshot(ctx, dev)
			if _, digest, _ := Digest(a.snap); err != nil || sn.Digest != digest {
				b.Fatalf("device %s: latest snapshot is not the last one sent (%v)", dev, err)
			}
		}
	}
	if stored != int64(b.N) {
		b.Fatalf("%d reports stored, want %d", stored, b.N)
	}
	unit := "heartbeats/s"
	if snapshots {
		unit = "snapshots/s"
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
}

// enrollBenchAgent enrolls device i of a benchmark and returns it with its
// snapshot (benchSnapshot), quiet when asked: then no snapshot rule fires
// on it.
func enrollBenchAgent(b *testing.B, st *store.Store, secretID string, i int, quiet bool) *benchAgent {
	ctx := context.Background()
	agentID := uuid.NewString()
	sn := benchSnapshot(i, agentID)
	if quiet {
		sn.RemoteAccess = nil
		for _, i := range sn.GetNetwork().GetInterfaces() {
			i.VpnToolId = "" // no rule fires
		}
		for _, l := range append(sn.GetSessions().GetCurrent(), sn.GetSessions().GetHistory()...) {
			l.SourceAddress = "192.168.1.40" // remote logons from the LAN only
		}
		if h := sn.GetActivity().GetHours(); len(h) > 8 {
			sn.Activity.Hours = h[len(h)-8:] // a working day, not around the clock
		}
	}
	// Each device enrolls from the address it reports from, as laptops at
	// home do: a hundred enrollments from one address within seconds is
	// what mass_enrollment flags, and then every report would carry that
	// alert.
	id := sn.GetIdentity()
	if _, err := st.Enroll(ctx, store.Enrollment{AgentID: agentID, SecretID: secretID, IP: fmt.Sprintf("203.0.113.%d", i),
		HardwareKey: store.HardwareKey(id.GetHardwareUuid(), id.GetSerialNumber(), id.GetMachineId()),
		Identity:    deviceIdentity(id), CertSerial: fmt.Sprint(i), CertNotAfter: time.Now().AddDate(1, 0, 0)}); err != nil {
		b.Fatal(err)
	}
	a, err := st.AgentByID(ctx, agentID)
	if err != nil {
		b.Fatal(err)
	}
	p := &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(203, 0, 113, byte(i)), Port: 40000 + i}}
	return &benchAgent{ctx: context.WithValue(peer.NewContext(ctx, p), agentKey{}, a), snap: sn, group: i / 8}
}

// move switches the device between its own access point and its group's.
func (a *benchAgent) move() {
	w := a.snap.GetNetwork().GetWifi()
	if a.seq%2 == 0 {
		w.Bssid = "a4:2b:b0:11:22:" + w.Bssid[len(w.Bssid)-2:]
	} else {
		w.Bssid = fmt.Sprintf("a4:2b:b0:ff:00:%02x", a.group)
	}
}

// change makes the next snapshot differ from the last: new scan times, the
// current hour's activity and a new login-history position.
func (a *benchAgent) change() {
	now := time.Now()
	a.snap.ScanStartedAt = timestamppb.New(now.Add(-2 * time.Second))
	a.snap.ScanFinishedAt = timestamppb.New(now)
	hours := a.snap.GetActivity().GetHours()
	hours[len(hours)-1].ActiveMinutes = uint32(a.seq % 61)
	a.snap.GetSessions().HistoryCursor = fmt.Sprintf("wtmp:%d", 1000+a.seq)
}

// benchSnapshot is a realistic snapshot of device i: identity, eight signal
// statuses, three remote-access tools, ten USB devices with interfaces, two
// displays with 256-byte EDIDs, four network interfaces, locale, twenty
// login sessions and a day of activity hours.
func benchSnapshot(i int, agentID string) *agentv1.HostSnapshot {
	now := time.Now().Truncate(time.Hour)
	ts := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(d)) }
	serial := fmt.Sprintf("5CG%07d", i)
	sn := &agentv1.HostSnapshot{
		Identity: &agentv1.HostIdentity{
			AgentId: agentID, HardwareUuid: fmt.Sprintf("4c4c4544-0042-3510-8052-%012x", i), SerialNumber: serial,
			MachineId: fmt.Sprintf("%032x", i+1), Hostname: fmt.Sprintf("laptop-%03d", i),
			Os: &agentv1.OperatingSystem{Family: "windows", Name: "Windows 11 Pro", Version: "10.0.26100", Build: "26100.2605",
				Kernel: "10.0.26100", Arch: "amd64"},
			HardwareVendor: "Dell Inc.", HardwareModel: "Latitude 7440", BootTime: ts(-36 * time.Hour), AgentVersion: "1.4.2",
		},
		ScanStartedAt: ts(-2 * time.Second), ScanFinishedAt: ts(0),
	}
	for _, name := range []string{"identity", "remoteaccess", "usb", "display", "network", "locale", "sessions", "activity"} {
		sn.Signals = append(sn.Signals, &agentv1.SignalStatus{Name: name, State: agentv1.SignalStatus_STATE_OK})
	}
	sn.RemoteAccess = &agentv1.RemoteAccess{CatalogVersion: "3f2a9c1d",
		Tools: []*agentv1.RemoteTool{
			{ToolId: "anydesk", Name: "AnyDesk", Category: "remote_desktop",
				Installs:  []*agentv1.InstallEvidence{{Kind: "uninstall_key", Location: `HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall\AnyDesk`, Version: "8.0.14"}},
				Services:  []*agentv1.ServiceEvidence{{Kind: "windows_service", Name: "AnyDesk", State: "running", StartMode: "auto"}},
				Processes: []*agentv1.ProcessEvidence{{Name: "AnyDesk.exe", Path: `C:\Program Files (x86)\AnyDesk\AnyDesk.exe`, Pid: 4312, User: `NT AUTHORITY\SYSTEM`, StartedAt: ts(-35 * time.Hour)}},
				Listening: []*agentv1.SocketEvidence{{Protocol: "tcp", LocalAddress: "0.0.0.0", LocalPort: 7070, Pid: 4312}},
				Connections: []*agentv1.SocketEvidence{{Protocol: "tcp", LocalAddress: "192.168.1.23", LocalPort: 51234,
					RemoteAddress: "195.181.174.20", RemotePort: 443, Pid: 4312}},
				ActiveSession: true},
			{ToolId: "chrome_remote_desktop", Name: "Chrome Remote Desktop", Category: "remote_desktop",
				Installs: []*agentv1.InstallEvidence{{Kind: "uninstall_key", Location: `HKLM\SOFTWARE\Google\Chrome Remote Desktop`, Version: "128.0.6613.27"}},
				Services: []*agentv1.ServiceEvidence{{Kind: "windows_service", Name: "chromoting", State: "stopped", StartMode: "manual"}}},
			{ToolId: "astrill", Name: "Astrill VPN", Category: "vpn",
				Installs:  []*agentv1.InstallEvidence{{Kind: "path", Location: `C:\Program Files (x86)\Astrill\astrill.exe`}},
				Processes: []*agentv1.ProcessEvidence{{Name: "astrill.exe", Path: `C:\Program Files (x86)\Astrill\astrill.exe`, Pid: 7720, User: "jdoe", StartedAt: ts(-8 * time.Hour)}}},
		},
		OsFeatures: []*agentv1.OsRemoteAccess{
			{Kind: "rdp", Enabled: true, Listening: true, Port: 3389, Source: `HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server`},
			{Kind: "ssh", Source: "sshd service"},
		},
	}
	usb := &agentv1.Usb{}
	for d := range 10 {
		dev := &agentv1.UsbDevice{Location: fmt.Sprintf("1-%d.%d", d/4+1, d%4+1), VendorId: uint32(0x046d + d), ProductId: uint32(0xc52b + d),
			BcdDevice: 0x1201, Manufacturer: "Logitech", Product: fmt.Sprintf("USB Receiver %d", d), Serial: fmt.Sprintf("%X%08d", d, i),
			SpeedMbps: 12}
		for n := range 1 + d%3 {
			dev.Interfaces = append(dev.Interfaces, &agentv1.UsbInterface{Number: uint32(n), Class: 3, Subclass: 1, Protocol: uint32(1 + n%2), Driver: "usbhid"})
		}
		if d%3 == 0 {
			dev.Hid = &agentv1.HidSummary{Keyboard: true, RelativeMouse: true, ConsumerControl: true}
		}
		if d == 7 {
			dev.MassStorage = &agentv1.MassStorage{Vendor: "SanDisk", Product: "Ultra Fit", Revision: "1.00"}
		}
		usb.Devices = append(usb.Devices, dev)
	}
	sn.Usb = usb
	displays := &agentv1.Displays{Lid: agentv1.LidState_LID_STATE_OPEN}
	for d := range 2 {
		edid := make([]byte, 256)
		copy(edid, []byte{0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00})
		for k := 8; k < len(edid); k++ {
			edid[k] = byte(k*7 + d*13 + i)
		}
		displays.Displays = append(displays.Displays, &agentv1.Display{
			Connector: fmt.Sprintf("DISPLAY%d", d+1), Edid: edid, EdidChecksumOk: true, ManufacturerId: []string{"AUO", "DEL"}[d],
			ProductCode: uint32(0x40a0 + d), SerialNumber: uint32(1000 + i), SerialString: fmt.Sprintf("CN0%06d", i),
			MonitorName: []string{"", "DELL U2723QE"}[d], ManufactureWeek: 12, ManufactureYear: 2023, WidthMm: uint32(310 + 300*d),
			HeightMm: uint32(174 + 160*d), ExtensionCount: uint32(d), ExtensionTags: []uint32{2}[:d], Internal: d == 0, Active: true,
		})
	}
	sn.Displays = displays
	sn.Network = &agentv1.Network{
		Interfaces: []*agentv1.NetworkInterface{
			{Name: "Wi-Fi", Kind: agentv1.NetworkInterface_KIND_WIFI, Mac: fmt.Sprintf("3c:22:fb:%02x:10:01", i), Up: true,
				Addresses: []string{"192.168.1.23/24", "fe80::1c2d:3e4f:5a6b:7c8d/64"}, Description: "Intel(R) Wi-Fi 6E AX211 160MHz"},
			{Name: "Ethernet", Kind: agentv1.NetworkInterface_KIND_ETHERNET, Mac: fmt.Sprintf("3c:22:fb:%02x:10:02", i),
				Description: "Intel(R) Ethernet Connection (16) I219-LM"},
			{Name: "Astrill", Kind: agentv1.NetworkInterface_KIND_TAP, Mac: "00:ff:1a:2b:3c:4d", Up: true,
				Addresses: []string{"10.8.0.6/24"}, Description: "TAP-Windows Adapter V9", VpnToolId: "astrill"},
			{Name: "Loopback Pseudo-Interface 1", Kind: agentv1.NetworkInterface_KIND_LOOPBACK, Up: true, Addresses: []string{"127.0.0.1/8", "::1/128"}},
		},
		DefaultRoute: &agentv1.DefaultRoute{Interface: "Astrill", Gateway: "10.8.0.1"},
		Wifi:         &agentv1.Wifi{Available: true, Interface: "Wi-Fi", Ssid: "HomeNet-5G", Bssid: fmt.Sprintf("a4:2b:b0:11:22:%02x", i)},
		DnsServers:   []string{"10.8.0.1", "192.168.1.1"},
		Proxy:        &agentv1.Proxy{},
	}
	sn.Locale = &agentv1.Locale{Timezone: "America/Chicago", UtcOffsetSeconds: -6 * 3600, SystemLocale: "en_US.UTF-8",
		KeyboardLayouts: []*agentv1.KeyboardLayout{
			{User: "jdoe", Layout: "00000409", Source: `HKCU\Keyboard Layout\Preload`},
			{User: "jdoe", Layout: "00000412", InputMethod: true, Source: `HKCU\Keyboard Layout\Preload`},
		}}
	sessions := &agentv1.Sessions{HistoryCursor: "wtmp:1000"}
	for s := range 20 {
		ls := &agentv1.LoginSession{User: "jdoe", Type: agentv1.LoginSession_TYPE_CONSOLE, Terminal: "console",
			StartedAt: ts(time.Duration(-20+s) * time.Hour)}
		if s%4 == 1 {
			ls.Type, ls.SourceAddress, ls.Terminal = agentv1.LoginSession_TYPE_REMOTE_DESKTOP, "10.8.0.1", "RDP-Tcp#3"
		}
		if s < 18 {
			ls.EndedAt = ts(time.Duration(-20+s)*time.Hour + 40*time.Minute)
			sessions.History = append(sessions.History, ls)
		} else {
			sessions.Current = append(sessions.Current, ls)
		}
	}
	sn.Sessions = sessions
	activity := &agentv1.Activity{IdleThresholdSeconds: 60}
	for h := range 24 {
		activity.Hours = append(activity.Hours, &agentv1.ActivityHour{Hour: ts(time.Duration(h-24) * time.Hour),
			ActiveMinutes: uint32((h * 17) % 61), SampledMinutes: 60})
	}
	sn.Activity = activity
	return sn
}

// BenchmarkReportIntake measures what Report does to a report itself,
// without the store: validation of the whole request, the report's own
// checks, the catalog matches and the digests (validate and prepare). The
// reports are BenchmarkIngestQuiet's snapshot, BenchmarkIngest's (farm)
// and BenchmarkIngestHeartbeat's heartbeat.
func BenchmarkReportIntake(b *testing.B) {
	kvm, err := policies.KVM(policies.FS())
	if err != nil {
		b.Fatal(err)
	}
	media, err := policies.Media(policies.FS())
	if err != nil {
		b.Fatal(err)
	}
	routers, err := policies.Routers(policies.FS())
	if err != nil {
		b.Fatal(err)
	}
	cats := &catalogState{kvm: kvm, media: media, routers: routers}
	farm := benchSnapshot(1, "a1") // BenchmarkIngest's
	sn := benchSnapshot(1, "a1")
	sn.RemoteAccess = nil // as enrollBenchAgent's quiet snapshot
	for _, i := range sn.GetNetwork().GetInterfaces() {
		i.VpnToolId = ""
	}
	for name, body := range map[string]func() *agentv1.Report{
		"snapshot": func() *agentv1.Report {
			return &agentv1.Report{Body: &agentv1.Report_Snapshot{Snapshot: sn}}
		},
		"farm": func() *agentv1.Report {
			return &agentv1.Report{Body: &agentv1.Report_Snapshot{Snapshot: farm}}
		},
		"heartbeat": func() *agentv1.Report {
			return &agentv1.Report{Body: &agentv1.Report_Heartbeat{Heartbeat: &agentv1.Heartbeat{
				SnapshotDigest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Identity: sn.GetIdentity()}}}
		},
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for n := 0; b.Loop(); n++ {
				r := body()
				r.ReportId, r.Sequence, r.CreatedAt = uuid.NewString(), uint64(n+1), timestamppb.Now()
				req := &agentv1.ReportRequest{Reports: []*agentv1.Report{r}}
				if err := validate(req.ProtoReflect(), time.Now()); err != nil {
					b.Fatal(err)
				}
				if _, err := prepare(r, "a1", cats); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
