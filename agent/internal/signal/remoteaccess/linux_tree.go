package remoteaccess

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// linuxClockTicks is USER_HZ, the unit of /proc/<pid>/stat's starttime; it
// is 100 on every Linux architecture Go supports.
const linuxClockTicks = 100

// linuxCommLen is TASK_COMM_LEN-1: /proc/<pid>/comm holds at most 15 bytes.
const linuxCommLen = 15

// linuxMaxFile bounds how much of a small /proc or /etc file is read.
const linuxMaxFile = 4 << 20

// linuxUnitDirs hold systemd unit files, most specific first.
func linuxUnitDirs() []string {
	return []string{"etc/systemd/system", "usr/local/lib/systemd/system", "lib/systemd/system", "usr/lib/systemd/system"}
}

// linuxDesktopDirs hold system-wide .desktop files.
func linuxDesktopDirs() []string {
	return []string{
		"usr/share/applications",
		"usr/local/share/applications",
		"var/lib/flatpak/exports/share/applications",
		"var/lib/snapd/desktop/applications",
	}
}

// readLinuxTree reads a Linux-layout tree (the live system through
// os.DirFS("/"), or a fixture root): processes and their sockets from
// proc, systemd units, dpkg packages and .desktop files. Catalog paths are
// probed separately (probeLinuxPaths).
// Parts that cannot be read are left out; a tree with none of proc/, etc/
// and var/ is an error.
func readLinuxTree(ctx context.Context, fsys fs.FS, order binary.ByteOrder, want func(Process) bool) (*Inventory, error) {
	inv := &Inventory{}
	found := false
	for _, d := range []string{"proc", "etc", "var", "usr"} {
		if st, err := fs.Stat(fsys, d); err == nil && st.IsDir() {
			found = true
		}
	}
	if !found {
		return nil, errors.New("no proc, etc, var or usr directory")
	}

	var socks []linuxSocket
	for _, f := range []struct{ file, proto string }{{"tcp", "tcp"}, {"tcp6", "tcp"}, {"udp", "udp"}, {"udp6", "udp"}} {
		b, err := readLinuxFile(fsys, "proc/net/"+f.file)
		if err != nil {
			continue
		}
		s, _ := parseLinuxProcNet(b, f.proto, order)
		socks = append(socks, s...)
	}
	inodes := make(map[uint64]int32, len(socks))
	for _, s := range socks {
		if s.Inode != 0 {
			inodes[s.Inode] = 0
		}
	}

	procs, err := readLinuxProcs(ctx, fsys, inodes, want)
	if err != nil {
		return nil, err
	}
	inv.Processes = procs
	for _, s := range socks {
		s.PID = inodes[s.Inode]
		inv.Sockets = append(inv.Sockets, s.Socket)
	}

	inv.Services = readLinuxUnits(fsys)
	if b, err := readLinuxFile(fsys, "var/lib/dpkg/status"); err == nil {
		inv.Installs = append(inv.Installs, parseDpkgStatus(b)...)
	}
	for _, d := range linuxDesktopDirs() {
		ents, err := fs.ReadDir(fsys, d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".desktop") && !e.IsDir() {
				inv.Installs = append(inv.Installs, Install{Kind: "desktop_file", Key: e.Name(), Location: "/" + d + "/" + e.Name()})
			}
		}
	}
	inv.OSFeatures = linuxOSFeatures(inv)
	return inv, ctx.Err()
}

func readLinuxFile(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, linuxMaxFile))
}

// readLinuxProcs lists proc/<pid>. For every socket inode in inodes it
// records the pid whose file descriptors hold it, for the processes want
// accepts (all when want is nil).
func readLinuxProcs(ctx context.Context, fsys fs.FS, inodes map[uint64]int32, want func(Process) bool) ([]Process, error) {
	ents, err := fs.ReadDir(fsys, "proc")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list proc: %w", err)
	}
	var users map[uint32]string
	if b, err := readLinuxFile(fsys, "etc/passwd"); err == nil {
		users = parsePasswd(b)
	}
	var boot time.Time
	if b, err := readLinuxFile(fsys, "proc/stat"); err == nil {
		boot, _ = parseLinuxBootTime(b)
	}
	var procs []Process
	for _, e := range ents {
		pid, err := strconv.ParseInt(e.Name(), 10, 32)
		if err != nil || pid <= 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, ok := readLinuxProc(fsys, int32(pid), users, boot, want)
		if !ok {
			continue // exited while we looked
		}
		procs = append(procs, p)
		if len(inodes) > 0 && (want == nil || want(p)) {
			readLinuxFDs(fsys, int32(pid), inodes)
		}
	}
	return procs, nil
}

func readLinuxProc(fsys fs.FS, pid int32, users map[uint32]string, boot time.Time, want func(Process) bool) (Process, bool) {
	dir := "proc/" + strconv.Itoa(int(pid))
	// stat holds both the name (comm, in parentheses) and the start time:
	// one read instead of two for every process.
	stat, err := readLinuxFile(fsys, dir+"/stat")
	if err != nil {
		return Process{}, false
	}
	comm, ok := parseStatComm(stat)
	if !ok {
		return Process{}, false
	}
	p := Process{PID: pid, Name: comm}
	if rl, ok := fsys.(fs.ReadLinkFS); ok {
		if exe, err := rl.ReadLink(dir + "/exe"); err == nil {
			p.Path = strings.TrimSuffix(exe, " (deleted)")
		}
	}
	readArgs := func() {
		if b, err := readLinuxFile(fsys, dir+"/cmdline"); err == nil {
			p.Args = parseCmdline(b)
		}
	}
	if len(comm) == linuxCommLen { // maybe truncated: argv[0] may complete it
		readArgs()
	}
	p.Name = linuxProcessName(p.Name, p.Path, p.Args)
	if want != nil && !want(p) {
		p.Args = nil // not a candidate: name and path are all the matcher needs
		return p, true
	}
	if p.Args == nil {
		readArgs()
	}
	if b, err := readLinuxFile(fsys, dir+"/status"); err == nil {
		if uid, ok := parseStatusUID(b); ok {
			if u, ok := users[uid]; ok {
				p.User = u
			} else {
				p.User = strconv.FormatUint(uint64(uid), 10)
			}
		}
	}
	if !boot.IsZero() {
		if ticks, ok := parseStatStartTime(stat); ok {
			p.Started = boot.Add(time.Duration(ticks) * (time.Second / linuxClockTicks))
		}
	}
	return p, true
}

// linuxProcessName is comm, unless comm is truncated to 15 bytes and the
// executable's or argv[0]'s base name is the longer name it was cut from.
func linuxProcessName(comm, exe string, args []string) string {
	if len(comm) != linuxCommLen {
		return comm
	}
	for _, full := range []string{path.Base(exe), argv0Base(args)} {
		if len(full) > len(comm) && strings.HasPrefix(full, comm) {
			return full
		}
	}
	return comm
}

func argv0Base(args []string) string {
	if len(args) == 0 || args[0] == "" {
		return ""
	}
	return path.Base(strings.Fields(args[0] + " x")[0])
}

// readLinuxFDs maps the socket inodes held by pid's descriptors to pid.
// Descriptors of other users' processes are unreadable without privilege
// and skipped.
func readLinuxFDs(fsys fs.FS, pid int32, inodes map[uint64]int32) {
	rl, ok := fsys.(fs.ReadLinkFS)
	if !ok {
		return
	}
	dir := "proc/" + strconv.Itoa(int(pid)) + "/fd"
	ents, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		target, err := rl.ReadLink(dir + "/" + e.Name())
		if err != nil {
			continue
		}
		if inode, ok := parseSocketLink(target); ok {
			if owner, want := inodes[inode]; want && owner == 0 {
				inodes[inode] = pid
			}
		}
	}
}

// parseSocketLink parses a descriptor link "socket:[12345]".
func parseSocketLink(s string) (uint64, bool) {
	rest, ok := strings.CutPrefix(s, "socket:[")
	if !ok {
		return 0, false
	}
	rest, ok = strings.CutSuffix(rest, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	return n, err == nil && n != 0
}

// parseCmdline splits /proc/<pid>/cmdline (NUL-separated argv).
func parseCmdline(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte{0})
	args := make([]string, len(parts))
	for i, p := range parts {
		args[i] = string(p)
	}
	return args
}

// parseStatusUID returns the effective uid from /proc/<pid>/status.
func parseStatusUID(b []byte) (uint32, bool) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("Uid:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) < 2 {
			return 0, false
		}
		uid, err := strconv.ParseUint(string(f[1]), 10, 32)
		return uint32(uid), err == nil
	}
	return 0, false
}

// parseStatStartTime returns field 22 (starttime, clock ticks after boot)
// of /proc/<pid>/stat. The comm field (2) may hold spaces and parentheses,
// so fields are counted after its last ')'.
// parseStatComm returns the process name of /proc/<pid>/stat: the text
// between the first "(" and the last ")" (a name may itself hold parentheses).
func parseStatComm(b []byte) (string, bool) {
	i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if i < 0 || j < i {
		return "", false
	}
	return string(b[i+1 : j]), true
}

func parseStatStartTime(b []byte) (uint64, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(b[i+1:])
	const idx = 22 - 3 // f[0] is field 3 (state)
	if len(f) <= idx {
		return 0, false
	}
	v, err := strconv.ParseUint(string(f[idx]), 10, 64)
	return v, err == nil
}

// parseLinuxBootTime returns the btime line of /proc/stat.
func parseLinuxBootTime(b []byte) (time.Time, bool) {
	for line := range bytes.Lines(b) {
		f := bytes.Fields(line)
		if len(f) == 2 && string(f[0]) == "btime" {
			sec, err := strconv.ParseInt(string(f[1]), 10, 64)
			if err != nil || sec <= 0 || sec > 253402300799 {
				return time.Time{}, false
			}
			return time.Unix(sec, 0).UTC(), true
		}
	}
	return time.Time{}, false
}

// parsePasswd maps uids to user names from an /etc/passwd file.
func parsePasswd(b []byte) map[uint32]string {
	users := map[uint32]string{}
	for line := range bytes.Lines(b) {
		f := strings.SplitN(strings.TrimRight(string(line), "\r\n"), ":", 4)
		if len(f) < 3 || f[0] == "" || strings.HasPrefix(f[0], "#") {
			continue
		}
		uid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		if _, dup := users[uint32(uid)]; !dup {
			users[uint32(uid)] = f[0]
		}
	}
	return users
}

// parseDpkgStatus returns the installed packages of a dpkg status file.
func parseDpkgStatus(b []byte) []Install {
	var out []Install
	var pkg, status, version string
	flush := func() {
		if pkg != "" && strings.HasSuffix(status, " ok installed") {
			out = append(out, Install{Kind: "package", Key: pkg, Location: "/var/lib/dpkg/status", Version: version})
		}
		pkg, status, version = "", "", ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // continuation
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			pkg = v
		case "Status":
			status = v
		case "Version":
			version = v
		}
	}
	flush()
	return out
}

// readLinuxUnits lists systemd unit files. A unit linked from a *.wants or
// *.requires directory of etc/systemd/system is "enabled", one linked to
// /dev/null there is "masked", any other "installed"; the value goes in
// StartMode (whether it runs is not read).
func readLinuxUnits(fsys fs.FS) []Service {
	enabled := map[string]bool{}
	masked := map[string]bool{}
	if ents, err := fs.ReadDir(fsys, "etc/systemd/system"); err == nil {
		for _, e := range ents {
			if !e.IsDir() {
				if e.Type()&fs.ModeSymlink != 0 {
					if rl, ok := fsys.(fs.ReadLinkFS); ok {
						if t, err := rl.ReadLink("etc/systemd/system/" + e.Name()); err == nil && t == "/dev/null" {
							masked[e.Name()] = true
						}
					}
				}
				continue
			}
			if !strings.HasSuffix(e.Name(), ".wants") && !strings.HasSuffix(e.Name(), ".requires") {
				continue
			}
			sub, err := fs.ReadDir(fsys, "etc/systemd/system/"+e.Name())
			if err != nil {
				continue
			}
			for _, s := range sub {
				enabled[s.Name()] = true
			}
		}
	}
	seen := map[string]bool{}
	var out []Service
	for _, d := range linuxUnitDirs() {
		ents, err := fs.ReadDir(fsys, d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			n := e.Name()
			if e.IsDir() || seen[n] || !isLinuxUnitName(n) {
				continue
			}
			seen[n] = true
			mode := "installed"
			switch {
			case masked[n]:
				mode = "masked"
			case enabled[n]:
				mode = "enabled"
			}
			out = append(out, Service{Kind: "systemd", Name: n, StartMode: mode})
		}
	}
	return out
}

func isLinuxUnitName(n string) bool {
	for _, s := range []string{".service", ".socket", ".timer", ".path"} {
		if strings.HasSuffix(n, s) && len(n) > len(s) {
			return true
		}
	}
	return false
}

// probeLinuxPaths returns a path install for each Linux path of the
// catalog that exists in fsys (a tree rooted like /). The tree reader
// cannot know these paths; the Collector probes them after reading it.
func probeLinuxPaths(fsys fs.FS, cat *policies.RemoteAccessCatalog) []Install {
	if cat == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []Install
	for _, t := range cat.Tools {
		for _, p := range t.Linux.Paths {
			name := strings.TrimPrefix(path.Clean("/"+p), "/")
			if seen[name] || !fs.ValidPath(name) || name == "." {
				continue
			}
			seen[name] = true
			if _, err := fs.Stat(fsys, name); err == nil {
				out = append(out, Install{Kind: "path", Key: "/" + name, Location: "/" + name})
			}
		}
	}
	return out
}

// linuxOSFeatures reports xrdp and VNC servers from an inventory: a unit
// or process of the server, and whether its port is listening.
func linuxOSFeatures(inv *Inventory) []*agentv1.OsRemoteAccess {
	var out []*agentv1.OsRemoteAccess

	listening := func(lo, hi uint32) (uint32, bool) {
		for _, s := range inv.Sockets {
			if s.Protocol == "tcp" && s.Listening && s.LocalPort >= lo && s.LocalPort <= hi {
				return s.LocalPort, true
			}
		}
		return 0, false
	}
	findProc := func(names ...string) string {
		for _, p := range inv.Processes {
			for _, n := range names {
				if strings.EqualFold(p.Name, n) {
					return n
				}
			}
		}
		return ""
	}

	xrdp := &agentv1.OsRemoteAccess{Kind: "xrdp", Port: 3389}
	for _, s := range inv.Services {
		if s.Name == "xrdp.service" {
			xrdp.Enabled = s.StartMode == "enabled"
			xrdp.Source = "systemd:xrdp.service"
		}
	}
	if n := findProc("xrdp"); n != "" {
		xrdp.Enabled = true
		if xrdp.Source == "" {
			xrdp.Source = "process:" + n
		}
	}
	if xrdp.Source != "" {
		_, xrdp.Listening = listening(3389, 3389)
		out = append(out, xrdp)
	}

	vnc := &agentv1.OsRemoteAccess{Kind: "vnc"}
	if n := findProc("x11vnc", "Xvnc", "Xtigervnc", "vncserver", "wayvnc", "gnome-remote-desktop", "gnome-remote-desktop-daemon"); n != "" {
		vnc.Enabled = true
		vnc.Source = "process:" + n
	}
	if port, ok := listening(5900, 5910); ok {
		vnc.Listening, vnc.Port = true, port
	} else if strings.HasPrefix(vnc.Source, "process:gnome-remote-desktop") {
		if port, ok := listening(3389, 3389); ok {
			vnc.Listening, vnc.Port = true, port
		}
	}
	if vnc.Source == "" && vnc.Listening {
		vnc.Source = "socket:tcp/" + strconv.Itoa(int(vnc.Port))
	}
	if vnc.Source != "" {
		out = append(out, vnc)
	}
	slices.SortFunc(out, func(a, b *agentv1.OsRemoteAccess) int { return strings.Compare(a.Kind, b.Kind) })
	return out
}
