package remoteaccess

import (
	"io/fs"
	"strings"
)

// winMaxPathEntries bounds the entries one winScanPaths call reports.
const winMaxPathEntries = 20000

// winScanPaths lists the top two levels of a directory such as Program
// Files or ProgramData (fsys is rooted there, base is its Windows path):
// every first-level directory (<base>\TeamViewer), and every entry inside
// one (<base>\AnyDesk\AnyDesk.exe, <base>\Google\Chrome Remote Desktop),
// as Install{Kind: "path"} with Key and Location the Windows path. The
// catalog's Windows paths are of those two shapes. Deeper levels are not
// walked, to keep the scan to a few hundred directory reads.
func winScanPaths(fsys fs.FS, base string) []Install {
	base = strings.TrimRight(base, `\`)
	top, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil
	}
	var ins []Install
	add := func(p string) bool {
		if len(ins) >= winMaxPathEntries {
			return false
		}
		ins = append(ins, Install{Kind: "path", Key: p, Location: p})
		return true
	}
	for _, d := range top {
		if !d.IsDir() {
			continue
		}
		dir := base + `\` + d.Name()
		if !add(dir) {
			break
		}
		ents, err := fs.ReadDir(fsys, d.Name())
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !add(dir + `\` + e.Name()) {
				return ins
			}
		}
	}
	return ins
}
