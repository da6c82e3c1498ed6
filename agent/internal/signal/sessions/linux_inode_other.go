//go:build !unix

package sessions

import "io/fs"

// fileInode is 0 where the OS has no inode numbers; rotation is then
// detected only by the file shrinking.
func fileInode(fi fs.FileInfo) uint64 { return 0 }
