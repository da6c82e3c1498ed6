package remoteaccess

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"

	"howett.net/plist"
)

// macLaunchdJob is what a launchd property list says about its job.
type macLaunchdJob struct {
	Label   string
	Program string // Program, or ProgramArguments[0]
	Args    []string
	// Disabled is the plist's own Disabled key; launchctl overrides win.
	Disabled bool
	// AutoStart is RunAtLoad true or KeepAlive true/a condition dictionary.
	AutoStart bool
}

// errMacNoLabel is returned for a property list without a Label string.
var errMacNoLabel = errors.New("launchd plist has no Label")

// parseLaunchdPlist reads a launchd job property list (XML or binary).
func parseLaunchdPlist(b []byte) (macLaunchdJob, error) {
	var m map[string]any
	if _, err := plist.Unmarshal(b, &m); err != nil {
		return macLaunchdJob{}, fmt.Errorf("decode launchd plist: %w", err)
	}
	var j macLaunchdJob
	j.Label, _ = m["Label"].(string)
	if j.Label == "" {
		return macLaunchdJob{}, errMacNoLabel
	}
	j.Program, _ = m["Program"].(string)
	if args, ok := m["ProgramArguments"].([]any); ok {
		for _, a := range args {
			if s, ok := a.(string); ok {
				j.Args = append(j.Args, s)
			}
		}
	}
	if j.Program == "" && len(j.Args) > 0 {
		j.Program = j.Args[0]
	}
	j.Disabled, _ = m["Disabled"].(bool)
	runAtLoad, _ := m["RunAtLoad"].(bool)
	switch ka := m["KeepAlive"].(type) {
	case bool:
		j.AutoStart = ka
	case map[string]any:
		j.AutoStart = len(ka) > 0
	}
	j.AutoStart = j.AutoStart || runAtLoad
	return j, nil
}

// macBundle is what an app bundle's Contents/Info.plist says.
type macBundle struct {
	ID      string // CFBundleIdentifier
	Version string // CFBundleShortVersionString, else CFBundleVersion
	Name    string // CFBundleName
}

// parseInfoPlist reads an app bundle's Info.plist (XML or binary).
func parseInfoPlist(b []byte) (macBundle, error) {
	var m map[string]any
	if _, err := plist.Unmarshal(b, &m); err != nil {
		return macBundle{}, fmt.Errorf("decode Info.plist: %w", err)
	}
	var bd macBundle
	bd.ID, _ = m["CFBundleIdentifier"].(string)
	if bd.ID == "" {
		return macBundle{}, errors.New("bundle Info.plist has no CFBundleIdentifier")
	}
	bd.Version, _ = m["CFBundleShortVersionString"].(string)
	if bd.Version == "" {
		bd.Version, _ = m["CFBundleVersion"].(string)
	}
	bd.Name, _ = m["CFBundleName"].(string)
	return bd, nil
}

// parseLaunchctlDisabled parses `launchctl print-disabled system` and
// returns each listed label's disabled state. Only the first block,
// "disabled services = { … }", is read (later blocks such as "login item
// services" are not launchd jobs). Releases print either
//
//	"com.apple.screensharing" => enabled | disabled
//
// or the older form, where the value answers "disabled?":
//
//	"com.apple.screensharing" => false | true
func parseLaunchctlDisabled(b []byte) (map[string]bool, error) {
	out := make(map[string]bool)
	sc := bufio.NewScanner(bytes.NewReader(b))
	in := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case !in && strings.HasPrefix(line, "disabled services") && strings.HasSuffix(line, "{"):
			in = true
		case in && line == "}":
			return out, nil
		case in:
			k, v, ok := strings.Cut(line, "=>")
			if !ok {
				continue
			}
			k = strings.Trim(strings.TrimSpace(k), `"`)
			switch strings.TrimSpace(v) {
			case "disabled", "true":
				out[k] = true
			case "enabled", "false":
				out[k] = false
			}
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("parse launchctl print-disabled: %w", err)
	}
	if !in {
		return out, errors.New("launchctl print-disabled: no \"disabled services\" block")
	}
	return out, nil
}

// parseRemoteManagementLaunchd reads "/Library/Application Support/Apple/
// Remote Desktop/RemoteManagement.launchd", which ARD's kickstart writes
// with the word "enabled" when Remote Management is activated.
func parseRemoteManagementLaunchd(b []byte) bool {
	return strings.TrimSpace(string(b)) == "enabled"
}
