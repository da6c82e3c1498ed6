package remoteaccess

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// Collector reads the remote-access inventory of the machine whose
// filesystem root is Root ("" or "/" for the live system) and matches it
// against Catalog.
type Collector struct {
	Root    string
	Catalog *policies.RemoteAccessCatalog
}

// Collect reads the inventory with this OS's reader and returns what
// matched the catalog, with the client ID of each tool found where the
// catalog says where the tool keeps one (see setClientIDs). On an OS without a reader the error wraps
// errors.ErrUnsupported.
func (c *Collector) Collect(ctx context.Context) (*agentv1.RemoteAccess, error) {
	if c.Catalog == nil {
		return nil, errors.New("remote access: no catalog")
	}
	root := c.Root
	if root == "" {
		root = "/"
	}
	inv, err := readInventory(ctx, root, candidates(c.Catalog, runtime.GOOS))
	if err != nil {
		return nil, fmt.Errorf("remote access inventory under %s: %w", root, err)
	}
	if runtime.GOOS == "linux" {
		// The darwin and windows readers find install paths themselves.
		inv.Installs = append(inv.Installs, probeLinuxPaths(os.DirFS(root), c.Catalog)...)
	}
	ra := Match(c.Catalog, runtime.GOOS, inv)
	r := clientIDReader{goos: runtime.GOOS, root: root, live: liveRoot(root), getenv: os.Getenv}
	if r.live {
		// The registry is the live system's: not read for another root.
		r.registry = clientIDRegistry
	}
	setClientIDs(ra, c.Catalog, r)
	return ra, nil
}

// candidates says whether a process could match a catalog tool on goos (by
// its name or its executable's base name), so that a reader can skip the
// details of every other process.
func candidates(cat *policies.RemoteAccessCatalog, goos string) func(Process) bool {
	var names []string
	for i := range cat.Tools {
		m, _ := osMatchFor(&cat.Tools[i], goos)
		names = append(append(names, m.Processes...), m.SessionProcesses...)
	}
	set := normalizedSet(names)
	return func(p Process) bool {
		return set[normalizeName(p.Name)] || p.Path != "" && set[normalizeName(p.Path)]
	}
}
