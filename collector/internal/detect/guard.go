package detect

import (
	"reflect"
	"strings"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"google.golang.org/protobuf/reflect/protoreflect"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// emptyGuard is a list or map of the snapshot (a path of fields from
// HostSnapshot) or of the person's facts (person.signins …) that, when
// empty, makes a condition false without running it. Most snapshot rules
// start by looking for something in one list
// (snapshot.remote_access.tools.exists(…), snapshot.peripherals.findings
// .exists(…)), and on most laptops that list is empty; the identity
// provider rules look through the person's sign-ins, and most devices
// have none (no provider, no bound person). The guard answers those rules
// with a few field reads instead of a CEL evaluation (the attribute
// resolution, the comprehension's frame, the cost tracking).
//
// The answer is the one CEL gives, errors included: a guard is only taken
// from the condition's first term (the whole condition or the leftmost
// operand of its top-level &&s, which cel-go evaluates first and
// short-circuits on when false), and that term is a comprehension whose
// result is its accumulator starting at false (exists, as CEL expands the
// macro), over a plain field path from the snapshot or the person: over an
// empty range it is false without running anything that could fail, cost
// or be interrupted.
type emptyGuard struct {
	// snapshot is the path from HostSnapshot to the list or map; nil for
	// the person's.
	snapshot []protoreflect.FieldDescriptor
	// person is the index of the list among PersonFacts' fields; -1 for
	// the snapshot's.
	person int
}

// guardOf is the empty guard of a checked condition, nil when it has none.
func guardOf(a *cel.Ast) *emptyGuard {
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
	// The range: snapshot.f1.….fn or person.f, read outside any
	// comprehension (so the name is the variable), each fi a field (not a
	// has() test).
	var names []string
	e := c.IterRange()
	for e.Kind() == celast.SelectKind && !e.AsSelect().IsTestOnly() {
		names = append(names, e.AsSelect().FieldName())
		e = e.AsSelect().Operand()
	}
	if e.Kind() != celast.IdentKind || len(names) == 0 {
		return nil
	}
	root := e.AsIdent()
	if ref, ok := a.NativeRep().ReferenceMap()[e.ID()]; !ok || ref.Name != root {
		return nil
	}
	switch root {
	case "snapshot":
		if g := snapshotGuard(names); g != nil {
			return &emptyGuard{snapshot: g, person: -1}
		}
	case "person":
		// A list field of PersonFacts, by its cel tag (as ext.NativeTypes
		// names it).
		pt := reflect.TypeFor[PersonFacts]()
		for i := range pt.NumField() {
			if f := pt.Field(i); len(names) == 1 && f.Tag.Get("cel") == names[0] && f.Type.Kind() == reflect.Slice {
				return &emptyGuard{person: i}
			}
		}
	}
	return nil
}

// snapshotGuard is the path of fields from HostSnapshot named by names
// (last first, as guardOf gathers them), nil when it is not a guard's.
func snapshotGuard(names []string) []protoreflect.FieldDescriptor {
	// Each field but the last a message CEL reads field by field (not a
	// well-known type, which CEL converts), the last a list or a map.
	md := (&agentv1.HostSnapshot{}).ProtoReflect().Descriptor()
	g := make([]protoreflect.FieldDescriptor, 0, len(names))
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

// empty says whether the guarded list or map has no entries: of sn (nil:
// an empty snapshot, as the rules see one), where an unset message on the
// way has none, as CEL reads it (its default); or of p (nil: an empty
// person).
func (g *emptyGuard) empty(sn *agentv1.HostSnapshot, p *PersonFacts) bool {
	if g.person >= 0 {
		return p == nil || reflect.ValueOf(p).Elem().Field(g.person).Len() == 0
	}
	if sn == nil {
		return true
	}
	m := sn.ProtoReflect()
	for i, fd := range g.snapshot {
		if !m.Has(fd) { // an empty list or map, or an unset message
			return true
		}
		if i < len(g.snapshot)-1 {
			m = m.Get(fd).Message()
		}
	}
	return false
}
