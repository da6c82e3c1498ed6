package detect

import (
	"bytes"
	"fmt"
	"path"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// SanctionedFile is the allowlist of sanctioned tools in a policies tree.
const SanctionedFile = "allowlist/sanctioned.yaml"

// Sanctioned is the allowlist: remote-access tools (catalog ids) the
// organisation uses on purpose, optionally only on some devices.
//
//	groups:
//	  it-laptops: ["it-*", "dev_0123abcd"]     # hostname globs or device ids
//	sanctioned:
//	  - tool: teamviewer
//	    reason: IT support (ticket SEC-42)     # required
//	    groups: [it-laptops]                    # optional; with devices, limits where it applies
//	    devices: ["helpdesk-*"]                 # optional hostname globs or device ids
//	    people: [sam@example.com]               # optional: devices bound to these people
//
// An entry without groups, devices and people applies to every device;
// otherwise to the devices any of them names. The rules see the result as
// device.sanctioned_tools.
type Sanctioned struct {
	Groups     map[string][]string `yaml:"groups"`
	Sanctioned []SanctionedTool    `yaml:"sanctioned"`
	// devices are the device patterns of each entry, its own and its
	// groups', worked out at load: For runs on every evaluation.
	devices [][]devicePattern
}

// devicePattern is a device id or a hostname glob, and the glob
// lower-cased, as hostnames are matched.
type devicePattern struct{ id, lower string }

// SanctionedTool is one allowlist entry.
type SanctionedTool struct {
	Tool    string   `yaml:"tool"`
	Reason  string   `yaml:"reason"`
	Groups  []string `yaml:"groups"`
	Devices []string `yaml:"devices"`
	People  []string `yaml:"people"`
}

func parseSanctioned(file string, b []byte) (*Sanctioned, error) {
	var s Sanctioned
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, &LoadError{File: file, Msg: err.Error()}
	}
	for i, e := range s.Sanctioned {
		if e.Tool == "" || e.Reason == "" {
			return nil, &LoadError{File: file, Msg: fmt.Sprintf("sanctioned[%d]: tool and reason are required", i)}
		}
		for _, g := range e.Groups {
			if _, ok := s.Groups[g]; !ok {
				return nil, &LoadError{File: file, Msg: fmt.Sprintf("sanctioned[%d] (%s): unknown group %q", i, e.Tool, g)}
			}
		}
		var devices []devicePattern
		for _, p := range append(slices.Clone(e.Devices), flatten(s.Groups, e.Groups)...) {
			if _, err := path.Match(p, ""); err != nil {
				return nil, &LoadError{File: file, Msg: fmt.Sprintf("sanctioned[%d] (%s): bad pattern %q", i, e.Tool, p)}
			}
			devices = append(devices, devicePattern{id: p, lower: strings.ToLower(p)})
		}
		s.devices = append(s.devices, devices)
	}
	return &s, nil
}

func flatten(groups map[string][]string, names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, groups[n]...)
	}
	return out
}

// For returns the tool ids sanctioned on a device, sorted.
func (s *Sanctioned) For(d *DeviceFacts) []string {
	if s == nil || d == nil {
		return nil
	}
	var out []string
	host := strings.ToLower(d.Hostname)
	for i, e := range s.Sanctioned {
		devices := s.devices[i]
		everywhere := len(devices) == 0 && len(e.People) == 0
		person := d.Person != "" && slices.ContainsFunc(e.People, func(p string) bool { return strings.EqualFold(p, d.Person) })
		if everywhere || person || slices.ContainsFunc(devices, func(p devicePattern) bool { return p.matches(d.ID, host) }) {
			out = append(out, e.Tool)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// matches says whether p names the device id or matches its hostname
// (host, lower-cased).
func (p devicePattern) matches(id, host string) bool {
	if p.id == id {
		return true
	}
	ok, _ := path.Match(p.lower, host)
	return ok
}
