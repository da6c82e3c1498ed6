// Package installers holds the files the agent's and the collector's
// packages are made of (the MSI's WiX source, the launchd daemon and pkg
// scripts, the systemd units and nfpm scripts), embedded so that
// `bonafide-collector package` builds installers without the source tree.
// collector/internal/packaging assembles them.
package installers
