// Package fsx has the file helpers the signal readers share.
package fsx

import (
	"fmt"
	"io"
	"io/fs"
)

// ReadCapped reads a whole file of fsys, refusing one larger than limit
// bytes: sysfs and procfs files a reader trusts to be small must not make
// the agent read without bound.
func ReadCapped(fsys fs.FS, name string, limit int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, limit)
	}
	return b, nil
}
