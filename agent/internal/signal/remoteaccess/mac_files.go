package remoteaccess

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// macMaxPlist bounds a plist read from disk.
const macMaxPlist = 4 << 20

// macGlob expands a root-relative pattern; results are sorted.
func macGlob(root, pattern string) []string {
	m, _ := filepath.Glob(filepath.Join(root, filepath.FromSlash(pattern)))
	sort.Strings(m)
	return m
}

// macReadFile reads a file up to macMaxPlist bytes.
func macReadFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > macMaxPlist {
		return nil, fmt.Errorf("%s: not a regular file under %d bytes", path, macMaxPlist)
	}
	return os.ReadFile(path)
}

// macReadLaunchdJobs lists launchd jobs from their plists. State is
// "running" when a process runs the job's program (running holds the
// executable paths of running processes; nil when unknown), "disabled"
// when launchctl (or, without an override, the plist) says so, else
// "enabled". StartMode is "disabled", "auto" (RunAtLoad or KeepAlive) or
// "on_demand".
// Unreadable or invalid plists are skipped: not every file there is a job.
func macReadLaunchdJobs(root string, disabled, running map[string]bool) []Service {
	var svcs []Service
	// Relative to root; "Users/*" expands per user.
	for _, dir := range []string{"Library/LaunchDaemons", "Library/LaunchAgents", "Users/*/Library/LaunchAgents"} {
		for _, p := range macGlob(root, dir+"/*.plist") {
			b, err := macReadFile(p)
			if err != nil {
				continue
			}
			j, err := parseLaunchdPlist(b)
			if err != nil {
				continue
			}
			off := j.Disabled
			if d, ok := disabled[j.Label]; ok {
				off = d
			}
			s := Service{Kind: "launchd", Name: j.Label, State: "enabled", StartMode: "on_demand"}
			if j.AutoStart {
				s.StartMode = "auto"
			}
			if off {
				s.State, s.StartMode = "disabled", "disabled"
			}
			if j.Program != "" && running[j.Program] {
				s.State = "running"
			}
			svcs = append(svcs, s)
		}
	}
	return svcs
}

// macReadAppBundles lists app bundles with their Info.plist; Location is
// the bundle path as seen on the machine (root-relative, with a leading /).
func macReadAppBundles(root string) []Install {
	var ins []Install
	for _, dir := range []string{"Applications", "Users/*/Applications"} {
		for _, app := range macGlob(root, dir+"/*.app") {
			b, err := macReadFile(filepath.Join(app, "Contents", "Info.plist"))
			if err != nil {
				continue
			}
			bd, err := parseInfoPlist(b)
			if err != nil {
				continue
			}
			loc := app
			if rel, err := filepath.Rel(root, app); err == nil {
				loc = "/" + filepath.ToSlash(rel)
			}
			ins = append(ins, Install{Kind: "app_bundle", Key: bd.ID, Location: loc, Version: bd.Version})
		}
	}
	return ins
}

// macPathGlobs are the root-relative places whose entries are reported as
// Install{Kind: "path"}: the shapes of the catalog's macOS paths (folders
// in /Applications that are not bundles, privileged helpers, launchd job
// files, /usr/local and /opt tools). Bundles are reported as app_bundle.
func macPathGlobs() []string {
	return []string{
		"Applications/*",
		"Library/PrivilegedHelperTools/*",
		"Library/LaunchDaemons/*",
		"Library/LaunchAgents/*",
		"usr/local/*",
		"usr/local/*/*", // includes usr/local/bin/*
		"opt/*",
		"usr/NX",
	}
}

// macMaxPaths bounds the path installs reported.
const macMaxPaths = 20000

// macReadPaths lists the entries matching macPathGlobs under root, as
// paths on the machine (root-relative with a leading /).
func macReadPaths(root string) []Install {
	var ins []Install
	for _, g := range macPathGlobs() {
		for _, p := range macGlob(root, g) {
			if g == "Applications/*" && filepath.Ext(p) == ".app" {
				continue
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				continue
			}
			loc := "/" + filepath.ToSlash(rel)
			ins = append(ins, Install{Kind: "path", Key: loc, Location: loc})
			if len(ins) >= macMaxPaths {
				return ins
			}
		}
	}
	return ins
}
