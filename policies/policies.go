// Package policies holds bonafide's default detection content: the rule
// files under rules/, embedded in the collector binary. The collector uses
// them unless --policies DIR names another tree of the same shape.
package policies

import (
	"embed"
	"io/fs"
)

//go:embed rules catalog allowlist
var content embed.FS

// FS returns the default policies tree, rooted so that its paths are
// rules/agent.yaml and so on.
func FS() fs.FS { return content }
