//go:build !windows

package display

// PresentMonitorIDs is Windows's cheap list of present monitor device
// nodes; Linux's change fingerprint reads the DRM connectors' status
// instead, and macOS has none yet.
func PresentMonitorIDs() []string { return nil }
