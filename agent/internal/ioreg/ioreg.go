// Package ioreg decodes macOS `ioreg -a` output (an XML property list of
// registry entries, each with its subtree under IORegistryEntryChildren)
// into entries with typed accessors. The output is machine data but its
// string properties are device-controlled: every accessor tolerates
// missing and mistyped values.
package ioreg

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"howett.net/plist"
)

// MaxSize caps the output Decode accepts.
const MaxSize = 64 << 20

// MaxDepth bounds walks of IORegistryEntryChildren; real subtrees are a
// dozen levels deep at most.
const MaxDepth = 64

// errNotArray is returned when the plist is not an array of entries.
var errNotArray = errors.New("ioreg: property list is not an array of registry entries")

// Node is one registry entry as ioreg -a prints it: its properties, the
// keys ioreg adds (IOObjectClass, IORegistryEntryID …) and its subtree.
type Node map[string]any

// Decode decodes ioreg -a output into its top-level entries. Empty output
// (nothing matched) yields no entries and no error.
func Decode(data []byte) (nodes []Node, err error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("ioreg: output too large (%d bytes)", len(data))
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, nil
	}
	defer func() {
		// The plist decoder is third-party code fed device-controlled
		// strings: a panic in it must not stop the agent.
		if r := recover(); r != nil {
			nodes, err = nil, fmt.Errorf("ioreg: decoding property list: %v", r)
		}
	}()
	var v any
	if _, err := plist.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("ioreg: decoding property list: %w", err)
	}
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				nodes = append(nodes, Node(m))
			}
		}
		return nodes, nil
	case map[string]any:
		return []Node{Node(v)}, nil
	}
	return nil, errNotArray
}

// Children returns the entry's child entries, skipping malformed ones.
func (n Node) Children() []Node {
	a, _ := n["IORegistryEntryChildren"].([]any)
	out := make([]Node, 0, len(a))
	for _, e := range a {
		if m, ok := e.(map[string]any); ok {
			out = append(out, Node(m))
		}
	}
	return out
}

// Class is the entry's IOObjectClass.
func (n Node) Class() string { return n.Str("IOObjectClass") }

// Str returns a string property, "" when missing or not a string.
func (n Node) Str(key string) string {
	s, _ := n[key].(string)
	return s
}

// Has reports whether the property exists.
func (n Node) Has(key string) bool {
	_, ok := n[key]
	return ok
}

// Dict returns a dictionary property as a Node (nil when not one).
func (n Node) Dict(key string) Node {
	m, _ := n[key].(map[string]any)
	return Node(m)
}

// FirstStr returns the first non-empty string among keys.
func (n Node) FirstStr(keys ...string) string {
	for _, k := range keys {
		if s := n.Str(k); s != "" {
			return s
		}
	}
	return ""
}

// Uint reads a non-negative integer property; ok is false when the key is
// missing, not an integer, negative or above max.
func (n Node) Uint(key string, max uint64) (uint64, bool) {
	var u uint64
	switch v := n[key].(type) {
	case uint64:
		u = v
	case int64:
		if v < 0 {
			return 0, false
		}
		u = uint64(v)
	case int:
		if v < 0 {
			return 0, false
		}
		u = uint64(v)
	case float64:
		if v < 0 || v > math.MaxUint32 || v != math.Trunc(v) {
			return 0, false
		}
		u = uint64(v)
	default:
		return 0, false
	}
	if u > max {
		return 0, false
	}
	return u, true
}

// U32 is Uint as a uint32, 0 when not readable.
func (n Node) U32(key string, max uint64) uint32 {
	v, _ := n.Uint(key, max)
	return uint32(v)
}

// Walk calls f on n and its descendants, depth first and at most MaxDepth
// deep, until f returns false.
func (n Node) Walk(f func(Node) bool) {
	var rec func(c Node, depth int) bool
	rec = func(c Node, depth int) bool {
		if depth > MaxDepth || !f(c) {
			return false
		}
		for _, g := range c.Children() {
			if !rec(g, depth+1) {
				return false
			}
		}
		return true
	}
	rec(n, 0)
}
