package remoteaccess

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/cmdx"
)

const (
	macPSPath        = "/bin/ps"
	macNetstatPath   = "/usr/sbin/netstat"
	macLaunchctlPath = "/bin/launchctl"
	// macCmdTimeout and macMaxOutput bound one run of ps, netstat or
	// launchctl (ps -axww args= lists every process's whole command line).
	macCmdTimeout = 20 * time.Second
	macMaxOutput  = 16 << 20
)

// readInventory reads macOS. Under root it reads launchd job plists,
// app bundles' Info.plist, the paths of macPathGlobs and kickstart's
// RemoteManagement.launchd; on the
// live system ("/") it also runs ps, netstat and launchctl for processes,
// sockets and Screen Sharing. Parts that fail are skipped and their
// errors joined; the inventory is returned whenever anything was read.
func readInventory(ctx context.Context, root string, _ func(Process) bool) (*Inventory, error) {
	inv := &Inventory{}
	var problems []error
	live := filepath.Clean(root) == "/"

	var disabled map[string]bool
	if live {
		if out, err := macRun(ctx, macPSPath, "-axww", "-o", "pid=", "-o", "uid=", "-o", "lstart=", "-o", "comm="); err != nil {
			problems = append(problems, err)
		} else if procs, err := parseMacPS(out, time.Local); err != nil {
			problems = append(problems, err)
		} else {
			inv.Processes = procs
		}
		if len(inv.Processes) > 0 {
			if out, err := macRun(ctx, macPSPath, "-axww", "-o", "pid=", "-o", "args="); err != nil {
				problems = append(problems, err)
			} else if args, err := parseMacPSArgs(out); err == nil {
				for i := range inv.Processes {
					p := &inv.Processes[i]
					p.Args = splitMacArgs(args[p.PID], p.Path)
				}
			}
			macResolveUsers(inv.Processes)
		}
		if out, err := macRun(ctx, macNetstatPath, "-anv", "-p", "tcp"); err != nil {
			problems = append(problems, err)
		} else if socks, err := parseMacNetstat(out); err != nil {
			problems = append(problems, err)
		} else {
			inv.Sockets = socks
		}
		if out, err := macRun(ctx, macLaunchctlPath, "print-disabled", "system"); err != nil {
			problems = append(problems, err)
		} else if d, err := parseLaunchctlDisabled(out); err != nil {
			problems = append(problems, err)
		} else {
			disabled = d
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	running := make(map[string]bool)
	for _, p := range inv.Processes {
		if p.Path != "" {
			running[p.Path] = true
		}
	}
	inv.Services = macReadLaunchdJobs(root, disabled, running)
	inv.Installs = macReadAppBundles(root)
	inv.Installs = append(inv.Installs, macReadPaths(root)...)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	rmEnabled := false
	if b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(macRemoteManagementLaunchd))); err == nil {
		rmEnabled = parseRemoteManagementLaunchd(b)
	}
	if live {
		inv.OSFeatures = append(inv.OSFeatures, macScreenSharingFeature(disabled, inv.Sockets))
	}
	if live || rmEnabled {
		inv.OSFeatures = append(inv.OSFeatures, macRemoteManagementFeature(inv.Processes, rmEnabled, inv.Sockets))
	}

	if len(problems) > 0 && len(inv.Processes) == 0 && len(inv.Services) == 0 && len(inv.Installs) == 0 && len(inv.Sockets) == 0 {
		return nil, errors.Join(problems...)
	}
	return inv, errors.Join(problems...)
}

// macRun runs a tool in the C locale, under macCmdTimeout and
// macMaxOutput, and returns its standard output.
func macRun(ctx context.Context, name string, args ...string) ([]byte, error) {
	return cmdx.RunEnv(ctx, []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin"}, macCmdTimeout, macMaxOutput, name, args...)
}

// macResolveUsers replaces the uids parseMacPS leaves in User with user
// names where the lookup succeeds.
func macResolveUsers(procs []Process) {
	names := make(map[string]string)
	for i := range procs {
		uid := procs[i].User
		name, ok := names[uid]
		if !ok {
			name = uid
			if u, err := user.LookupId(uid); err == nil && u.Username != "" {
				name = u.Username
			}
			names[uid] = name
		}
		procs[i].User = name
	}
}
