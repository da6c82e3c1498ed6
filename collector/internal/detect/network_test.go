package detect

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// TestInterfacesContain: network.interfacesContain(ip) gives what the
// comprehension it stands for gives, for IPv4 and IPv6 addresses inside
// and outside the interfaces' networks, with addresses that are no CIDR
// (plain addresses, zones, IPv4-mapped prefixes, garbage), and on a
// snapshot without a network or without interfaces.
func TestInterfacesContain(t *testing.T) {
	envs, err := newEnvs()
	if err != nil {
		t.Fatal(err)
	}
	const ips = `["192.168.1.40", "10.8.0.1", "10.9.0.1", "127.0.0.1", "::1", "fe80::5", "2001:db8::1", "2001:db9::1", "203.0.113.9", "0.0.0.0"]`
	compile := func(src string) func(*agentv1.HostSnapshot) string {
		eval := snapshotExpr(t, envs, ips+`.map(a, cel.bind(src, ip(a), `+src+`))`)
		return func(sn *agentv1.HostSnapshot) string { return fmt.Sprint(eval(sn)) }
	}
	walk := compile(`snapshot.network.interfaces.exists(i, i.addresses.exists(n, isCIDR(n) && cidr(n).containsIP(src)))`)
	native := compile(`snapshot.network.interfacesContain(src)`)

	addrs := []string{"192.168.1.23/24", "10.8.0.6/24", "10.0.0.0/8", "127.0.0.1/8", "::1/128", "fe80::1c2d/64",
		"fe80::1%eth0/64", "2001:db8::/32", "::ffff:10.8.0.6/120", "192.168.1.23", "not an address", "", "0.0.0.0/0", "203.0.113.9/32"}
	cases := []*agentv1.HostSnapshot{{}, {Network: &agentv1.Network{}}, {Network: &agentv1.Network{Interfaces: []*agentv1.NetworkInterface{{}}}}}
	r := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		n := &agentv1.Network{}
		for range r.IntN(5) {
			i := &agentv1.NetworkInterface{Name: "if"}
			for range r.IntN(4) {
				i.Addresses = append(i.Addresses, addrs[r.IntN(len(addrs))])
			}
			n.Interfaces = append(n.Interfaces, i)
		}
		cases = append(cases, &agentv1.HostSnapshot{Network: n})
	}
	inside := 0
	for i, sn := range cases {
		want, got := walk(sn), native(sn)
		if got != want {
			t.Fatalf("case %d (%v): interfacesContain = %s, the comprehension gives %s", i, sn.GetNetwork(), got, want)
		}
		inside += strings.Count(got, "true")
	}
	if total := len(cases) * 10; inside < total/4 || inside > total*3/4 {
		t.Fatalf("%d of %d addresses inside the interfaces' networks, want a fair mix", inside, total)
	}
}
