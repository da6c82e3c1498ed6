package detect

import (
	"strings"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"google.golang.org/protobuf/reflect/protoreflect"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// emptyGuard is a list or map of the snapshot (a path of fields from
// HostSnapshot) that, when empty, makes a condition false without running
// it. Most snapshot rules start by looking for something in one list
// (snapshot.remote_access.tools.exists(…), snapshot.peripherals.findings
// .exists(…)), and on most laptops that list is empty: the guard answers
// those rules with a few field reads instead of a CEL evaluation (the
// attribute resolution, the comprehension's frame, the cost tracking).
//
// The answer is the one CEL gives, errors included: a guard is only taken
// from the condition's first term (the whole condition or the leftmost
// operand of its top-level &&s, which cel-go evaluates first and
// short-circuits on when false), and that term is a comprehension whose
// result is its accumulator starting at false (exists, as CEL expands the
// macro), over a plain field path from the snapshot: over an empty range
// it is false without running anything that could fail, cost or be
// interrupted.
type emptyGuard []protoreflect.FieldDescriptor

// guardOf is the empty guard of a checked condition, nil when it has none.
func guardOf(a *cel.Ast) emptyGuard {
	first := a.NativeRep().Expr()
	for first.Kind() == celast.CallKind && first.AsCall().FunctionName() == operators.LogicalAnd && len(first.AsCall().Args()) == 2 {
		first = first.AsCall().Args()[0]
	}
	if first.Kind() != celast.ComprehensionKind {
		return nil
	}
	c := first.AsComprehension()
	if init := c.AccuInit(); init.Kind() != celast.LiteralKind || init.AsLiteral() != types.False {
		return nil
	}
	if r := c.Result(); r.Kind() != celast.IdentKind || r.AsIdent() != c.AccuVar() {
		return nil
	}
	// The range: snapshot.f1.….fn, read outside any comprehension (so
	// snapshot is the variable), each fi a field (not a has() test).
	var names []string
	e := c.IterRange()
	for e.Kind() == celast.SelectKind && !e.AsSelect().IsTestOnly() {
		names = append(names, e.AsSelect().FieldName())
		e = e.AsSelect().Operand()
	}
	if e.Kind() != celast.IdentKind || e.AsIdent() != "snapshot" || len(names) == 0 {
		return nil
	}
	if ref, ok := a.NativeRep().ReferenceMap()[e.ID()]; !ok || ref.Name != "snapshot" {
		return nil
	}
	// Each field but the last a message CEL reads field by field (not a
	// well-known type, which CEL converts), the last a list or a map.
	md := (&agentv1.HostSnapshot{}).ProtoReflect().Descriptor()
	g := make(emptyGuard, 0, len(names))
	for i := len(names) - 1; i >= 0; i-- {
		fd := md.Fields().ByName(protoreflect.Name(names[i]))
		if fd == nil {
			return nil
		}
		g = append(g, fd)
		if i == 0 {
			if !fd.IsList() && !fd.IsMap() {
				return nil
			}
			break
		}
		if fd.IsList() || fd.IsMap() || fd.Message() == nil || strings.HasPrefix(string(fd.Message().FullName()), "google.protobuf.") {
			return nil
		}
		md = fd.Message()
	}
	return g
}

// empty says whether the guarded list or map of sn (nil: an empty
// snapshot, as the rules see one) has no entries: an unset message on the
// way has none, as CEL reads it (its default).
func (g emptyGuard) empty(sn *agentv1.HostSnapshot) bool {
	if sn == nil {
		return true
	}
	m := sn.ProtoReflect()
	for i, fd := range g {
		if !m.Has(fd) { // an empty list or map, or an unset message
			return true
		}
		if i < len(g)-1 {
			m = m.Get(fd).Message()
		}
	}
	return false
}
