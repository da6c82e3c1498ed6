// Package posture reads the local account set-up: which accounts are
// administrators, which accounts people sign in with, and which account
// installed each of the catalog's remote tools where the OS records it.
// The FBI asks employers of remote hires to remove local admin rights
// (PSA I-012325); several people's accounts on one company laptop mean it
// is shared.
//
// Privacy: account names only; of the package logs, only the installs of
// packages the remote-access catalog names.
package posture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"howett.net/plist"

	"github.com/bonafide-sec/bonafide/agent/internal/fsx"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	maxAccounts = 256     // accounts reported per list
	maxInstalls = 256     // tool installs reported
	maxName     = 64      // bytes of an account name kept
	maxFile     = 4 << 20 // longest /etc file or plist read
	maxLog      = 8 << 20 // longest apt history log read (decompressed)
	maxRotated  = 12      // rotated apt history logs read
)

// adminGroups are the Linux groups whose members may administer the
// machine through sudo or polkit (Debian/Ubuntu sudo, Fedora/Arch wheel,
// older Ubuntu admin).
var adminGroups = []string{"sudo", "wheel", "admin"}

// Tools are the remote-access catalog's install names that posture looks
// for in the OS's install records.
type Tools struct {
	// Packages maps Linux package names to tool ids.
	Packages map[string]string
	// Products maps tool ids to Windows uninstall DisplayName globs (MSI
	// product names).
	Products map[string][]string
}

// Collect reads the posture of the machine whose filesystem root is root
// ("" or "/" for the live system). Under any other root it reads the
// Linux and macOS layouts from files whatever the OS, so that fixture
// roots work everywhere.
func Collect(ctx context.Context, root string, tools Tools) (*agentv1.Posture, error) {
	if root != "" && root != "/" {
		return fromFS(os.DirFS(root), tools.Packages), nil
	}
	return readLive(ctx, tools)
}

// fromFS reads a Linux root, or a macOS one when it has the macOS
// directory-services layout.
func fromFS(fsys fs.FS, packages map[string]string) *agentv1.Posture {
	if _, err := fs.Stat(fsys, macAdminPlist); err == nil {
		return ReadMacFS(fsys)
	}
	return ReadLinuxFS(fsys, packages)
}

// ReadLinuxFS reads /etc/passwd, /etc/group and apt's history logs.
func ReadLinuxFS(fsys fs.FS, packages map[string]string) *agentv1.Posture {
	p := &agentv1.Posture{}
	passwd, perr := fsx.ReadCapped(fsys, "etc/passwd", maxFile)
	group, gerr := fsx.ReadCapped(fsys, "etc/group", maxFile)
	users := ParsePasswd(passwd)
	if perr == nil && gerr == nil {
		p.LocalAdmins, p.AdminsRead = LinuxAdmins(users, ParseGroup(group)), true
	}
	for _, u := range users {
		if u.UID >= 1000 && u.UID < 60000 && loginShell(u.Shell) && u.Home != "" {
			if st, err := fs.Stat(fsys, strings.TrimPrefix(path.Clean(u.Home), "/")); err == nil && st.IsDir() {
				p.InteractiveAccounts = append(p.InteractiveAccounts, u.Name)
			}
		}
	}
	p.InteractiveAccounts = finish(p.InteractiveAccounts)
	p.LocalAdmins = finish(p.LocalAdmins)
	if len(packages) > 0 {
		p.ToolInstalls = aptInstalls(fsys, packages)
	}
	return p
}

// PasswdEntry is one line of /etc/passwd.
type PasswdEntry struct {
	Name        string
	UID, GID    int
	Home, Shell string
}

// ParsePasswd parses /etc/passwd ("name:x:uid:gid:gecos:home:shell");
// malformed lines are skipped.
func ParsePasswd(b []byte) []PasswdEntry {
	var out []PasswdEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) != 7 || f[0] == "" || strings.HasPrefix(f[0], "#") {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, PasswdEntry{Name: f[0], UID: uid, GID: gid, Home: f[5], Shell: f[6]})
	}
	return out
}

// GroupEntry is one line of /etc/group.
type GroupEntry struct {
	Name    string
	GID     int
	Members []string
}

// ParseGroup parses /etc/group ("name:x:gid:member,member");
// malformed lines are skipped.
func ParseGroup(b []byte) []GroupEntry {
	var out []GroupEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1024*1024)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) != 4 || f[0] == "" {
			continue
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		g := GroupEntry{Name: f[0], GID: gid}
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				g.Members = append(g.Members, m)
			}
		}
		out = append(out, g)
	}
	return out
}

// LinuxAdmins are the members of the admin groups, by membership or as
// their primary group.
func LinuxAdmins(users []PasswdEntry, groups []GroupEntry) []string {
	var out []string
	for _, g := range groups {
		if !slices.Contains(adminGroups, g.Name) {
			continue
		}
		out = append(out, g.Members...)
		for _, u := range users {
			if u.GID == g.GID {
				out = append(out, u.Name)
			}
		}
	}
	return out
}

// loginShell reports whether a passwd shell lets the account sign in.
func loginShell(sh string) bool {
	base := path.Base(sh)
	return sh != "" && !strings.Contains(base, "nologin") && base != "false" && base != "sync" && base != "shutdown" && base != "halt"
}

// finish sanitises, sorts, de-duplicates and bounds an account list.
func finish(names []string) []string {
	var out []string
	for _, n := range names {
		n = strings.ToValidUTF8(strings.TrimSpace(n), "")
		if n == "" || len(n) > maxName {
			continue
		}
		out = append(out, n)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > maxAccounts {
		out = out[:maxAccounts]
	}
	return out
}

// aptInstalls reads apt's history log and its rotations for installs of
// the catalog's packages.
func aptInstalls(fsys fs.FS, packages map[string]string) []*agentv1.ToolInstall {
	var out []*agentv1.ToolInstall
	names := []string{"var/log/apt/history.log", "var/log/apt/history.log.1"}
	for i := 1; i <= maxRotated; i++ {
		names = append(names, fmt.Sprintf("var/log/apt/history.log.%d.gz", i))
	}
	for _, name := range names {
		b, err := readLog(fsys, name)
		if err != nil {
			continue
		}
		for _, in := range ParseAptHistory(b, packages) {
			in.Source = "/" + name
			out = append(out, in)
		}
	}
	slices.SortStableFunc(out, func(a, b *agentv1.ToolInstall) int { return a.GetAt().AsTime().Compare(b.GetAt().AsTime()) })
	if len(out) > maxInstalls {
		out = out[len(out)-maxInstalls:]
	}
	return out
}

// readLog reads a log, decompressing a .gz one, at most maxLog bytes.
func readLog(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		defer z.Close()
		r = z
	}
	return io.ReadAll(io.LimitReader(r, maxLog))
}

// ParseAptHistory parses apt's history log: blank-line separated entries
// of "Key: value" lines, among them "Start-Date: 2026-11-20  10:12:01",
// "Requested-By: alice (1000)" (absent when root ran apt directly) and
// "Install: pkg:arch (version), pkg:arch (version, automatic)". It
// returns the installs of packages in packages (name → tool id).
func ParseAptHistory(b []byte, packages map[string]string) []*agentv1.ToolInstall {
	var out []*agentv1.ToolInstall
	var start time.Time
	user := ""
	var pending []*agentv1.ToolInstall
	flush := func() {
		for _, in := range pending {
			in.User = user
			if !start.IsZero() {
				in.At = timestamppb.New(start)
			}
		}
		out = append(out, pending...)
		pending, user, start = nil, "", time.Time{}
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 4<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		key, val, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		switch key {
		case "Start-Date":
			start, _ = time.Parse("2006-01-02  15:04:05", strings.TrimSpace(val))
		case "Requested-By":
			name, _, _ := strings.Cut(strings.TrimSpace(val), " ")
			if len(name) <= maxName {
				user = name
			}
		case "Install", "Reinstall", "Upgrade":
			for _, item := range splitAptPackages(val) {
				pkg, _, _ := strings.Cut(item, ":")
				if id, ok := packages[pkg]; ok && key != "Upgrade" {
					pending = append(pending, &agentv1.ToolInstall{ToolId: id, Package: pkg})
				}
			}
		}
	}
	flush()
	for _, in := range out {
		if in.User == "" {
			in.User = "root"
		}
	}
	return out
}

// splitAptPackages splits "a:amd64 (1.0), b:amd64 (2.0, automatic)" into
// "a:amd64", "b:amd64": commas inside parentheses do not split.
func splitAptPackages(s string) []string {
	var out []string
	depth, startAt := 0, 0
	for i, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth = max(0, depth-1)
		case ',':
			if depth == 0 {
				out = append(out, s[startAt:i])
				startAt = i + 1
			}
		}
	}
	out = append(out, s[startAt:])
	for i, p := range out {
		p = strings.TrimSpace(p)
		if j := strings.IndexByte(p, ' '); j >= 0 {
			p = p[:j]
		}
		out[i] = p
	}
	return out
}

// macAdminPlist is the admin group's record in the local directory.
const macAdminPlist = "var/db/dslocal/nodes/Default/groups/admin.plist"

// ReadMacFS reads the admin group's members from the local directory
// (a property list whose "users" key lists short names) and the homes
// under /Users.
func ReadMacFS(fsys fs.FS) *agentv1.Posture {
	p := &agentv1.Posture{}
	if b, err := fsx.ReadCapped(fsys, macAdminPlist, maxFile); err == nil {
		if users, err := ParseMacGroup(b); err == nil {
			p.LocalAdmins, p.AdminsRead = finish(users), true
		}
	}
	ents, _ := fs.ReadDir(fsys, "Users")
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") && e.Name() != "Shared" && e.Name() != "Guest" {
			p.InteractiveAccounts = append(p.InteractiveAccounts, e.Name())
		}
	}
	p.InteractiveAccounts = finish(p.InteractiveAccounts)
	return p
}

// ParseMacGroup returns the "users" of a dslocal group record (XML or
// binary property list; every attribute is an array of strings).
func ParseMacGroup(b []byte) ([]string, error) {
	var m map[string]any
	if _, err := plist.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode group plist: %w", err)
	}
	var out []string
	if us, ok := m["users"].([]any); ok {
		for _, u := range us {
			if s, ok := u.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// WinProfileAccounts names the accounts of the user profiles in
// ProfileList (SID → ProfileImagePath): the profiles of local and domain
// users (SIDs S-1-5-21-…), named by their folder.
func WinProfileAccounts(profiles map[string]string) []string {
	var out []string
	for sid, p := range profiles {
		if !strings.HasPrefix(strings.ToUpper(sid), "S-1-5-21-") || strings.HasSuffix(strings.ToLower(sid), ".bak") {
			continue
		}
		p = strings.TrimRight(strings.ReplaceAll(p, `\`, "/"), "/")
		out = append(out, path.Base(p))
	}
	return finish(out)
}

// WinAdmins names the members of the local Administrators group as
// NetLocalGroupGetMembers gives them ("DOMAIN\name", level 3): accounts
// of this computer (domain computer, the NetBIOS name) by their short
// name, as sessions name them; others (domain and Entra ID accounts and
// groups) whole (see WinAccount).
func WinAdmins(members []string, computer string) []string {
	var out []string
	for _, m := range members {
		out = append(out, WinAccount(m, computer))
	}
	return finish(out)
}

// WinAccount names a "DOMAIN\name" account: by its short name when it is
// this computer's (domain computer, the NetBIOS name) or the system's
// ("NT AUTHORITY\SYSTEM" is "SYSTEM"), else whole.
func WinAccount(account, computer string) string {
	if dom, name, ok := strings.Cut(account, `\`); ok && (strings.EqualFold(dom, computer) || account == `NT AUTHORITY\SYSTEM`) {
		return name
	}
	return account
}
