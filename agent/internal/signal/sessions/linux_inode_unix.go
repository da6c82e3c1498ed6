//go:build unix

package sessions

import (
	"io/fs"
	"syscall"
)

// fileInode returns fi's inode number, 0 if unknown.
func fileInode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino) //nolint:unconvert // int64 on some platforms
	}
	return 0
}
