package remoteaccess

import (
	"context"
	"encoding/binary"
	"os"
)

// readInventory reads the Linux tree under root. os.DirFS, not os.Root:
// proc/<pid>/exe and proc/<pid>/fd/* are links that are read, not
// followed, and the kernel's own links under proc must resolve.
func readInventory(ctx context.Context, root string) (*Inventory, error) {
	return readLinuxTree(ctx, os.DirFS(root), binary.NativeEndian)
}
