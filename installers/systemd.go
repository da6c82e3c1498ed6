package installers

import "embed"

// Linux holds the agent's deb/rpm files, under linux/: the systemd unit
// bonafide-agent.service, the commented agent.yaml.sample, and the
// maintainer scripts scripts/{postinstall,preremove,postremove}.sh, each
// written for both the deb and the rpm argument conventions.
//
//go:embed linux/bonafide-agent.service linux/agent.yaml.sample linux/scripts/*.sh
var Linux embed.FS

// Collector holds the collector's deb/rpm files, under collector/: the
// systemd unit bonafide-collector.service, the sample settings
// collector.env, and scripts/{preinstall,postinstall,preremove,postremove}.sh.
//
//go:embed collector/bonafide-collector.service collector/collector.env collector/scripts/*.sh
var Collector embed.FS
