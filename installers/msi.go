package installers

import "embed"

// Windows holds the agent's MSI source, windows/bonafide-agent.wxs: WiX v3
// for Debian's wixl, written as a Go text/template that
// collector/internal/packaging (msi.go) renders.
//
//go:embed windows/bonafide-agent.wxs
var Windows embed.FS
