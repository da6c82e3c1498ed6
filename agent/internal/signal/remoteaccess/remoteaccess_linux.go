package remoteaccess

import (
	"context"
	"encoding/binary"
	"os"
)

// readInventory reads the Linux tree under root. os.DirFS, not os.Root:
// proc/<pid>/exe and proc/<pid>/fd/* are links that are read, not
// followed, and the kernel's own links under proc must resolve.
//
// want, when not nil, says which processes are worth their details (command
// line, user, socket descriptors); the others are listed by pid, name and
// path only, which keeps a full scan cheap.
func readInventory(ctx context.Context, root string, want func(Process) bool) (*Inventory, error) {
	return readLinuxTree(ctx, os.DirFS(root), binary.NativeEndian, want)
}
