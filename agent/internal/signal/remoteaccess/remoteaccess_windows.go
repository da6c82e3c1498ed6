package remoteaccess

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

const (
	winTCPTableOwnerPIDAll = 5 // TCP_TABLE_OWNER_PID_ALL
	winMaxTCPTable         = 64 << 20
	winMaxCmdLine          = 1 << 20
	winUninstallKey        = `SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall`
	winUninstallKey32      = `SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall`
)

// readInventory reads Windows. On the live system (root "/") it lists
// processes (Toolhelp32 snapshot; image path, start time, user and
// command line where the process can be opened with
// PROCESS_QUERY_LIMITED_INFORMATION), Win32 services (SCM), uninstall
// registry keys (HKLM 64- and 32-bit views, and each loaded HKU hive),
// the top two levels of Program Files, Program Files (x86) and
// ProgramData as paths, the TCP table
// (GetExtendedTcpTable, IPv4 and IPv6) and RDP (Terminal Server registry
// values + the TCP table). For another root only the path scan runs,
// under root\Program Files, root\Program Files (x86) and root\ProgramData,
// reported as C:\….
func readInventory(ctx context.Context, root string, _ func(Process) bool) (*Inventory, error) {
	inv := &Inventory{}
	if filepath.Clean(root) != "/" && filepath.Clean(root) != `\` {
		for _, d := range []string{"Program Files", "Program Files (x86)", "ProgramData"} {
			inv.Installs = append(inv.Installs, winScanPaths(os.DirFS(filepath.Join(root, d)), `C:\`+d)...)
		}
		return inv, nil
	}

	var problems []error
	if procs, err := winProcesses(ctx); err != nil {
		problems = append(problems, err)
	} else {
		inv.Processes = procs
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if svcs, err := winServices(); err != nil {
		problems = append(problems, err)
	} else {
		inv.Services = svcs
	}
	inv.Installs = winUninstallEntries()
	seen := make(map[string]bool)
	for _, env := range []string{"ProgramFiles", "ProgramFiles(x86)", "ProgramW6432", "ProgramData"} {
		d := os.Getenv(env)
		if d == "" || seen[strings.ToLower(d)] {
			continue
		}
		seen[strings.ToLower(d)] = true
		inv.Installs = append(inv.Installs, winScanPaths(os.DirFS(d), d)...)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, af := range []int{winAFInet, winAFInet6} {
		b, err := winTCPTable(af)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		socks, err := parseTCPTableOwnerPID(b, af)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		inv.Sockets = append(inv.Sockets, socks...)
	}
	inv.OSFeatures = append(inv.OSFeatures, winRDPFeature(winReadRDPSettings(), inv.Sockets))

	if len(problems) > 0 && len(inv.Processes) == 0 && len(inv.Services) == 0 && len(inv.Installs) == 0 && len(inv.Sockets) == 0 {
		return nil, errors.Join(problems...)
	}
	return inv, errors.Join(problems...)
}

// winProcesses walks a Toolhelp32 process snapshot. Per-process details
// are best effort: protected processes and, without elevation, other
// users' processes cannot be opened, and keep only name and pid.
func winProcesses(ctx context.Context) ([]Process, error) {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return nil, fmt.Errorf("CreateToolhelp32Snapshot: %w", err)
	}
	defer windows.CloseHandle(snap)

	users := make(map[string]string) // SID string → DOMAIN\name
	pathBuf := make([]uint16, windows.MAX_LONG_PATH)
	var procs []Process
	var e windows.ProcessEntry32
	e.Size = uint32(unsafe.Sizeof(e))
	for err = windows.Process32First(snap, &e); err == nil; err = windows.Process32Next(snap, &e) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		p := Process{PID: int32(e.ProcessID), Name: windows.UTF16ToString(e.ExeFile[:])}
		if e.ProcessID > 4 { // 0 idle, 4 System
			winProcessDetails(&p, pathBuf, users)
		}
		procs = append(procs, p)
	}
	if !errors.Is(err, windows.ERROR_NO_MORE_FILES) {
		return procs, fmt.Errorf("Process32Next: %w", err)
	}
	return procs, nil
}

// winProcessDetails fills path, start time, user and argv where the
// process can be opened.
func winProcessDetails(p *Process, pathBuf []uint16, users map[string]string) {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(p.PID))
	if err != nil {
		return
	}
	defer windows.CloseHandle(h)

	n := uint32(len(pathBuf))
	if err := windows.QueryFullProcessImageName(h, 0, &pathBuf[0], &n); err == nil {
		p.Path = windows.UTF16ToString(pathBuf[:n])
	}
	var created, exited, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(h, &created, &exited, &kernel, &user); err == nil && created.Nanoseconds() > 0 {
		p.Started = time.Unix(0, created.Nanoseconds()).UTC()
	}
	p.User = winProcessUser(h, users)
	if cmd, err := winCommandLine(h); err == nil && cmd != "" {
		if argv, err := windows.DecomposeCommandLine(cmd); err == nil {
			p.Args = argv
		}
	}
}

// winProcessUser returns DOMAIN\name of the process token's user, or "".
func winProcessUser(h windows.Handle, cache map[string]string) string {
	var tok windows.Token
	if err := windows.OpenProcessToken(h, windows.TOKEN_QUERY, &tok); err != nil {
		return ""
	}
	defer tok.Close()
	tu, err := tok.GetTokenUser()
	if err != nil {
		return ""
	}
	sid := tu.User.Sid.String()
	if name, ok := cache[sid]; ok {
		return name
	}
	name := sid
	if acc, dom, _, err := tu.User.Sid.LookupAccount(""); err == nil {
		name = acc
		if dom != "" {
			name = dom + `\` + acc
		}
	}
	cache[sid] = name
	return name
}

// winCommandLine reads a process's command line with
// NtQueryInformationProcess(ProcessCommandLineInformation), available
// from Windows 8.1 with PROCESS_QUERY_LIMITED_INFORMATION. The output is a
// UNICODE_STRING whose buffer follows it in the same allocation.
func winCommandLine(h windows.Handle) (string, error) {
	size := uint32(1024)
	for range 4 {
		buf := make([]byte, size)
		var ret uint32
		err := windows.NtQueryInformationProcess(h, windows.ProcessCommandLineInformation, unsafe.Pointer(&buf[0]), size, &ret)
		if err == nil {
			if uintptr(ret) < unsafe.Sizeof(windows.NTUnicodeString{}) {
				return "", nil
			}
			us := (*windows.NTUnicodeString)(unsafe.Pointer(&buf[0]))
			// The string must lie inside buf.
			start := uintptr(unsafe.Pointer(us.Buffer)) - uintptr(unsafe.Pointer(&buf[0]))
			if us.Buffer == nil || start > uintptr(len(buf)) || uintptr(us.Length) > uintptr(len(buf))-start {
				return "", errors.New("command line outside its buffer")
			}
			s := us.String()
			runtime.KeepAlive(buf)
			return s, nil
		}
		if !errors.Is(err, windows.STATUS_INFO_LENGTH_MISMATCH) && !errors.Is(err, windows.STATUS_BUFFER_TOO_SMALL) && !errors.Is(err, windows.STATUS_BUFFER_OVERFLOW) {
			return "", err
		}
		if ret <= size || ret > winMaxCmdLine {
			return "", err
		}
		size = ret
	}
	return "", errors.New("command line kept growing")
}

// winServices lists Win32 services with their state and start type. The
// SCM is opened with only connect and enumerate rights, each service with
// only SERVICE_QUERY_CONFIG.
func winServices() ([]Service, error) {
	scm, err := windows.OpenSCManager(nil, nil, windows.SC_MANAGER_CONNECT|windows.SC_MANAGER_ENUMERATE_SERVICE)
	if err != nil {
		return nil, fmt.Errorf("OpenSCManager: %w", err)
	}
	defer windows.CloseServiceHandle(scm)

	var buf []byte
	var needed, count uint32
	for {
		var p *byte
		if len(buf) > 0 {
			p = &buf[0]
		}
		err = windows.EnumServicesStatusEx(scm, windows.SC_ENUM_PROCESS_INFO, windows.SERVICE_WIN32,
			windows.SERVICE_STATE_ALL, p, uint32(len(buf)), &needed, &count, nil, nil)
		if err == nil {
			break
		}
		if !errors.Is(err, windows.ERROR_MORE_DATA) || needed <= uint32(len(buf)) {
			return nil, fmt.Errorf("EnumServicesStatusEx: %w", err)
		}
		buf = make([]byte, needed)
	}
	if count == 0 {
		return nil, nil
	}
	ents := unsafe.Slice((*windows.ENUM_SERVICE_STATUS_PROCESS)(unsafe.Pointer(&buf[0])), int(count))
	svcs := make([]Service, 0, len(ents))
	for _, e := range ents {
		name := windows.UTF16PtrToString(e.ServiceName)
		s := Service{Kind: "windows_service", Name: name, State: winServiceState(e.ServiceStatusProcess.CurrentState), StartMode: "unknown"}
		if h, err := windows.OpenService(scm, e.ServiceName, windows.SERVICE_QUERY_CONFIG); err == nil {
			s.StartMode = winServiceStartMode(h)
			windows.CloseServiceHandle(h)
		}
		svcs = append(svcs, s)
	}
	runtime.KeepAlive(buf)
	return svcs, nil
}

// winServiceStartMode reads a service's start type with QueryServiceConfig
// and, for an automatic start, whether it is delayed with
// QueryServiceConfig2 (not delayed when that cannot be read). mgr's Config
// is not used: it fails as a whole when any of the four queries it makes
// fails (Wine 8 refuses some QueryServiceConfig2 levels).
func winServiceStartMode(h windows.Handle) string {
	size := uint32(1024)
	for range 3 {
		buf := make([]byte, size)
		cfg := (*windows.QUERY_SERVICE_CONFIG)(unsafe.Pointer(&buf[0]))
		err := windows.QueryServiceConfig(h, cfg, size, &size)
		if err == nil {
			var d windows.SERVICE_DELAYED_AUTO_START_INFO
			var n uint32
			delayed := cfg.StartType == windows.SERVICE_AUTO_START &&
				windows.QueryServiceConfig2(h, windows.SERVICE_CONFIG_DELAYED_AUTO_START_INFO,
					(*byte)(unsafe.Pointer(&d)), uint32(unsafe.Sizeof(d)), &n) == nil &&
				d.IsDelayedAutoStartUp != 0
			return winStartMode(cfg.StartType, delayed)
		}
		if !errors.Is(err, windows.ERROR_INSUFFICIENT_BUFFER) || size > 64<<10 {
			break
		}
	}
	return "unknown"
}

// winUninstallEntries reads the Uninstall keys of HKLM (64-bit and
// WOW6432Node views) and of every loaded user hive under HKU. Entries
// without a DisplayName (updates, components) are skipped.
func winUninstallEntries() []Install {
	var ins []Install
	ins = append(ins, winUninstallKeyEntries(registry.LOCAL_MACHINE, `HKLM\`, winUninstallKey)...)
	ins = append(ins, winUninstallKeyEntries(registry.LOCAL_MACHINE, `HKLM\`, winUninstallKey32)...)
	hku, err := registry.OpenKey(registry.USERS, "", registry.ENUMERATE_SUB_KEYS)
	if err != nil {
		return ins
	}
	sids, _ := hku.ReadSubKeyNames(-1)
	hku.Close()
	for _, sid := range sids {
		if strings.HasSuffix(sid, "_Classes") {
			continue
		}
		ins = append(ins, winUninstallKeyEntries(registry.USERS, `HKU\`, sid+`\`+winUninstallKey)...)
	}
	return ins
}

func winUninstallKeyEntries(hive registry.Key, prefix, path string) []Install {
	k, err := registry.OpenKey(hive, path, registry.ENUMERATE_SUB_KEYS|registry.WOW64_64KEY)
	if err != nil {
		return nil
	}
	defer k.Close()
	subs, err := k.ReadSubKeyNames(-1)
	if err != nil {
		return nil
	}
	var ins []Install
	for _, sub := range subs {
		sk, err := registry.OpenKey(k, sub, registry.QUERY_VALUE)
		if err != nil {
			continue
		}
		name, _, err := sk.GetStringValue("DisplayName")
		if err == nil && name != "" {
			ver, _, _ := sk.GetStringValue("DisplayVersion")
			ins = append(ins, Install{Kind: "uninstall_key", Key: name, Location: prefix + path + `\` + sub, Version: ver})
		}
		sk.Close()
	}
	return ins
}

// winTCPTable returns the raw MIB_TCPTABLE_OWNER_PID (af winAFInet) or
// MIB_TCP6TABLE_OWNER_PID (winAFInet6) from iphlpapi's
// GetExtendedTcpTable(pTcpTable, pdwSize, bOrder, ulAf, TableClass,
// Reserved), growing the buffer while it answers
// ERROR_INSUFFICIENT_BUFFER (the table can grow between calls).
func winTCPTable(af int) ([]byte, error) {
	proc := windows.NewLazySystemDLL("iphlpapi.dll").NewProc("GetExtendedTcpTable")
	if err := proc.Find(); err != nil {
		return nil, fmt.Errorf("GetExtendedTcpTable: %w", err)
	}
	size := uint32(16 << 10)
	for range 8 {
		buf := make([]byte, size)
		r, _, _ := proc.Call(uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0,
			uintptr(af), winTCPTableOwnerPIDAll, 0)
		switch errno := windows.Errno(r); errno {
		case 0:
			return buf, nil
		case windows.ERROR_INSUFFICIENT_BUFFER:
			if size > winMaxTCPTable {
				return nil, fmt.Errorf("GetExtendedTcpTable(af %d): table of %d bytes", af, size)
			}
			size += size / 4 // room for sockets opened before the next call
		default:
			return nil, fmt.Errorf("GetExtendedTcpTable(af %d): %w", af, errno)
		}
	}
	return nil, fmt.Errorf("GetExtendedTcpTable(af %d): table kept growing", af)
}

// winReadRDPSettings reads fDenyTSConnections and the RDP-Tcp PortNumber.
func winReadRDPSettings() winRDPSettings {
	var s winRDPSettings
	if v, ok := winRegDWORD(winTerminalServerKey, "fDenyTSConnections"); ok {
		s.DenyTSConnections = &v
	}
	if v, ok := winRegDWORD(winRDPTcpKey, "PortNumber"); ok {
		s.PortNumber = &v
	}
	return s
}

func winRegDWORD(path, name string) (uint32, bool) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, path, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if err != nil {
		return 0, false
	}
	defer k.Close()
	v, _, err := k.GetIntegerValue(name)
	if err != nil || v > 1<<32-1 {
		return 0, false
	}
	return uint32(v), true
}
