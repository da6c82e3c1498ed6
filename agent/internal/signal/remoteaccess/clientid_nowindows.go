//go:build !windows

package remoteaccess

// clientIDRegistry is nil: only Windows has a registry to read client IDs
// from.
var clientIDRegistry func(key, value string) string
