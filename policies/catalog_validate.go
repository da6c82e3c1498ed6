package policies

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
)

var toolID = regexp.MustCompile(`^[a-z0-9][a-z0-9_]{1,63}$`)

var categories = []string{CategoryRemoteDesktop, CategoryRMM, CategoryTunnel, CategoryVPN, CategoryStayAwake}

// Validate checks the catalog's schema: ids well formed and unique, known
// categories, a source for every entry and at least one way to recognise
// the tool.
func (c *RemoteAccessCatalog) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, t := range c.Tools {
		where := fmt.Sprintf("tools[%d] (%s)", i, t.ID)
		if !toolID.MatchString(t.ID) {
			errs = append(errs, fmt.Errorf("%s: id must match %s", where, toolID))
		}
		if seen[t.ID] {
			errs = append(errs, fmt.Errorf("%s: duplicate id", where))
		}
		seen[t.ID] = true
		if t.Name == "" {
			errs = append(errs, fmt.Errorf("%s: name missing", where))
		}
		if !slices.Contains(categories, t.Category) {
			errs = append(errs, fmt.Errorf("%s: category %q not one of %v", where, t.Category, categories))
		}
		if len(t.Sources) == 0 {
			errs = append(errs, fmt.Errorf("%s: no source", where))
		}
		if t.Windows.empty() && t.MacOS.empty() && t.Linux.empty() {
			errs = append(errs, fmt.Errorf("%s: nothing to match on any OS", where))
		}
		for _, p := range t.Ports {
			if p.Protocol != "tcp" && p.Protocol != "udp" || p.Port == 0 {
				errs = append(errs, fmt.Errorf("%s: bad port %+v", where, p))
			}
		}
	}
	return errors.Join(errs...)
}

func (m OSMatch) empty() bool {
	return len(m.Processes)+len(m.SessionProcesses)+len(m.Services)+len(m.BundleIDs)+len(m.Paths)+
		len(m.UninstallNames)+len(m.Packages)+len(m.DesktopFiles) == 0
}
