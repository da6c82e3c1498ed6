package installers

import "embed"

// Darwin holds the agent's macOS package files, under darwin/: the
// LaunchDaemon com.bonafide.agent.plist, the package scripts preinstall and
// postinstall, uninstall.sh (installed as
// /usr/local/share/bonafide/uninstall.sh), the sample configuration profile
// com.bonafide.agent.mobileconfig and README.md. collector/internal/packaging
// (pkg.go) assembles them into a .pkg with package macpkg.
//
//go:embed darwin
var Darwin embed.FS
