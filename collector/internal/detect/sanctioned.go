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
}

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
		for _, p := range append(slices.Clone(e.Devices), flatten(s.Groups, e.Groups)...) {
			if _, err := path.Match(p, ""); err != nil {
				return nil, &LoadError{File: file, Msg: fmt.Sprintf("sanctioned[%d] (%s): bad pattern %q", i, e.Tool, p)}
			}
		}
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
	for _, e := range s.Sanctioned {
		patterns := append(slices.Clone(e.Devices), flatten(s.Groups, e.Groups)...)
		everywhere := len(patterns) == 0 && len(e.People) == 0
		person := d.Person != "" && slices.ContainsFunc(e.People, func(p string) bool { return strings.EqualFold(p, d.Person) })
		if everywhere || person || slices.ContainsFunc(patterns, func(p string) bool { return matchDevice(p, d) }) {
			out = append(out, e.Tool)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func matchDevice(pattern string, d *DeviceFacts) bool {
	if pattern == d.ID {
		return true
	}
	ok, _ := path.Match(strings.ToLower(pattern), strings.ToLower(d.Hostname))
	return ok
}
