//go:build !windows

package main

import "context"

// runAsService runs the agent under systemd or launchd (`run --service`):
// kardianos/service runs it until SIGINT or SIGTERM.
func runAsService(o options, run func(context.Context) error) error {
	return runService(o, run)
}
