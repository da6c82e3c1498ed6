package detect

import (
	"net/netip"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// networkTypeName is the CEL name of snapshot.network.
const networkTypeName = "bonafide.agent.v1.Network"

// interfacesContain declares network.interfacesContain(ip): whether an
// address of one of the network's interfaces, read as a CIDR, contains ip.
// It is what
//
//	network.interfaces.exists(i, i.addresses.exists(n, isCIDR(n) && cidr(n).containsIP(ip)))
//
// gives, without the two comprehensions: every report checks its remote
// logons' sources so, and in CEL the walk over the interfaces and their
// addresses costs more than the rest of the rule.
func interfacesContain() cel.EnvOption {
	return cel.Function("interfacesContain",
		cel.MemberOverload("network_interfaces_contain_ip",
			[]*cel.Type{cel.ObjectType(networkTypeName), ext.IPType}, cel.BoolType,
			cel.BinaryBinding(func(n, ip ref.Val) ref.Val {
				network, err := asMessage[*agentv1.Network]("interfacesContain", n.Value())
				if err != nil {
					return types.WrapErr(err)
				}
				addr, ok := ip.Value().(netip.Addr)
				if !ok {
					return types.NewErr("interfacesContain: got %s, want an IP address", ip.Type().TypeName())
				}
				for _, i := range network.GetInterfaces() {
					for _, a := range i.GetAddresses() {
						// cidr(a) also refuses a zone, which ParsePrefix
						// does too, and an IPv4-mapped IPv6 prefix, which
						// contains no address ip() accepts.
						if p, err := netip.ParsePrefix(a); err == nil && p.Contains(addr) {
							return types.True
						}
					}
				}
				return types.False
			})))
}
