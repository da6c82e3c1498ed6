package detect

import (
	"fmt"
	"slices"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"google.golang.org/protobuf/proto"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// sessionsTypeName is the CEL name of snapshot.sessions.
const sessionsTypeName = "bonafide.agent.v1.Sessions"

// sourceAddresses declares sessions.sourceAddresses(types): the distinct
// source addresses of the current and then the past sessions whose type is
// one of types, each where it first occurs, the empty address of a session
// without one included. It is what
//
//	(sessions.current.map(s, s.type in types, s.source_address)
//	  + sessions.history.map(s, s.type in types, s.source_address)).distinct()
//
// gives, without the comprehensions: every report runs such a walk over all
// its sessions, most of them console ones, and in CEL each session visited
// costs more than the rest of a typical rule.
func sourceAddresses() cel.EnvOption {
	return cel.Function("sourceAddresses",
		cel.MemberOverload("sessions_source_addresses_list_int",
			[]*cel.Type{cel.ObjectType(sessionsTypeName), cel.ListType(cel.IntType)}, cel.ListType(cel.StringType),
			cel.BinaryBinding(func(s, kinds ref.Val) ref.Val {
				sessions, err := asMessage[*agentv1.Sessions]("sourceAddresses", s.Value())
				if err != nil {
					return types.WrapErr(err)
				}
				list, ok := kinds.(traits.Lister)
				if !ok {
					return types.NewErr("sourceAddresses: got %s, want a list of session types", kinds.Type().TypeName())
				}
				var want []int64
				for it := list.Iterator(); it.HasNext() == types.True; {
					k, ok := it.Next().(types.Int)
					if !ok {
						return types.NewErr("sourceAddresses: a session type is not an int")
					}
					want = append(want, int64(k))
				}
				var out []string
				seen := map[string]bool{}
				for _, group := range [][]*agentv1.LoginSession{sessions.GetCurrent(), sessions.GetHistory()} {
					for _, ls := range group {
						if a := ls.GetSourceAddress(); slices.Contains(want, int64(ls.GetType())) && !seen[a] {
							seen[a] = true
							out = append(out, a)
						}
					}
				}
				return types.NewStringList(types.DefaultTypeAdapter, out)
			})))
}

// asMessage is v, the value of a message of type T in CEL, as the
// generated type; fn names the function asking. An unset message field
// (snapshot.sessions, snapshot.network) reads as an empty dynamic message,
// which is copied.
func asMessage[T proto.Message](fn string, v any) (T, error) {
	var zero T
	name := zero.ProtoReflect().Descriptor().FullName()
	switch m := v.(type) {
	case T:
		return m, nil
	case proto.Message:
		if m.ProtoReflect().Descriptor().FullName() == name {
			b, err := proto.Marshal(m)
			if err != nil {
				return zero, err
			}
			out := zero.ProtoReflect().New().Interface().(T)
			return out, proto.Unmarshal(b, out)
		}
	}
	return zero, fmt.Errorf("%s: got %T, want %s", fn, v, name)
}
