// Package network reads the machine's network position: its interfaces
// (with the VPN and tunnel adapters among them), the default route and the
// gateway's MAC, the Wi-Fi connection, the DNS servers and the system proxy.
//
// Privacy: only configuration and state are read. No traffic, no DNS
// queries, no browsing data, no scan of the neighbourhood.
package network

import (
	"context"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/agent/internal/cmdx"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

const (
	maxFile       = 1 << 20 // longest /proc or /etc file read
	maxAttr       = 4096    // longest sysfs attribute read
	maxOutput     = 1 << 20 // longest command output kept
	maxInterfaces = 1024
	maxAddresses  = 256 // per interface
	maxDNS        = 32
	maxBypass     = 256
	cmdTimeout    = 15 * time.Second
)

// Reasons given when the Wi-Fi connection cannot be read.
const (
	reasonUnderRoot = "not read under --root"
	reasonRedacted  = "SSID redacted by macOS (no location permission)"
)

// Collect reads the network position of the machine whose filesystem root
// is root ("" or "/" for the live system). Under any other root it reads
// the Linux layout from files whatever the OS, so that fixture roots work
// everywhere. adapters maps VPN and tunnel tool ids to adapter-name globs
// (from the remote-access catalog); an interface whose name or description
// matches one gets that id as vpn_tool_id.
func Collect(ctx context.Context, root string, adapters map[string][]string) (*agentv1.Network, error) {
	var (
		n   *agentv1.Network
		err error
	)
	if root != "" && root != "/" {
		n, err = readLinuxFS(os.DirFS(root))
		if n != nil {
			n.Wifi = &agentv1.Wifi{Reason: reasonUnderRoot}
		}
	} else {
		n, err = readLive(ctx)
	}
	if err != nil {
		return nil, err
	}
	tagVPN(n.Interfaces, adapters)
	return n, nil
}

// tagVPN sets vpn_tool_id on every interface whose name or description
// matches one of the tool's adapter globs (path.Match syntax,
// case-insensitive). Tool ids are tried in sorted order so that the result
// does not depend on map order.
func tagVPN(ifs []*agentv1.NetworkInterface, adapters map[string][]string) {
	ids := make([]string, 0, len(adapters))
	for id := range adapters {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, itf := range ifs {
		name, desc := strings.ToLower(itf.GetName()), strings.ToLower(itf.GetDescription())
	tools:
		for _, id := range ids {
			for _, g := range adapters[id] {
				g = strings.ToLower(g)
				if globMatch(g, name) || (desc != "" && globMatch(g, desc)) {
					itf.VpnToolId = id
					break tools
				}
			}
		}
	}
}

func globMatch(pattern, s string) bool {
	ok, err := path.Match(pattern, s)
	return err == nil && ok
}

// normMAC returns a hardware address as lower-case, colon-separated,
// two-digit hex ("aa:bb:cc:dd:ee:ff"). It accepts ':' or '-' separators
// and one-digit octets (macOS prints "0:1b:2c:3:4:5"). It returns "" for
// anything that is not 6 or 8 octets, and for the all-zero address.
func normMAC(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == '-' })
	if len(parts) != 6 && len(parts) != 8 {
		return ""
	}
	var b strings.Builder
	zero := true
	for i, p := range parts {
		if len(p) < 1 || len(p) > 2 {
			return ""
		}
		for _, c := range p {
			if !isHex(c) {
				return ""
			}
			if c != '0' {
				zero = false
			}
		}
		if i > 0 {
			b.WriteByte(':')
		}
		if len(p) == 1 {
			b.WriteByte('0')
		}
		b.WriteString(strings.ToLower(p))
	}
	if zero {
		return ""
	}
	return b.String()
}

func isHex(c rune) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// macBytes formats raw hardware-address bytes like normMAC.
func macBytes(b []byte) string {
	if len(b) != 6 && len(b) != 8 {
		return ""
	}
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 3*len(b))
	for i, c := range b {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, hex[c>>4], hex[c&15])
	}
	return normMAC(string(out))
}

// readCapped reads at most limit bytes of name from fsys.
func readCapped(fsys fs.FS, name string, limit int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// readAttr reads a small sysfs-style attribute, trimmed; "" when absent.
func readAttr(fsys fs.FS, name string) string {
	b, err := readCapped(fsys, name, maxAttr)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// lines splits b into lines without their "\r\n" or "\n".
func lines(b []byte) []string {
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	return strings.Split(s, "\n")
}

// run runs an absolute-path command under cmdTimeout and maxOutput. The
// C locale keeps the output in the documented (English) form.
func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return cmdx.Run(ctx, cmdTimeout, maxOutput, name, args...)
}

// addAddr appends the CIDR of ip/bits to list unless already there or the
// list is full.
func addAddr(list []string, p netip.Prefix) []string {
	if !p.IsValid() || len(list) >= maxAddresses {
		return list
	}
	s := p.String()
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// addUnique appends s to list unless empty, already there or list is full.
func addUnique(list []string, s string, limit int) []string {
	if s == "" || len(list) >= limit || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// splitList splits a proxy bypass list on commas, semicolons and
// whitespace.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ';' || r == ' ' || r == '\t'
	}) {
		out = addUnique(out, f, maxBypass)
	}
	return out
}
