package detect

import (
	"reflect"
	"strings"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/overloads"
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
// macro), or the size of one whose accumulator starts as the empty list
// (filter, map) compared so that an empty list makes the term false
// (size(….filter(…)) >= 2, as the rules counting what they found do), over
// a plain field path from the snapshot or the person: over an empty range
// it is false without running anything that could fail, cost or be
// interrupted.
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
	// exists: false over an empty range; or a list built over the range
	// (filter, map) whose size must be at least one: over an empty range
	// the list is empty and the comparison false.
	wantInit := func(init celast.Expr) bool {
		return init.Kind() == celast.LiteralKind && init.AsLiteral() == types.False
	}
	if built := sizeAtLeastOne(first); built != nil {
		first = built
		wantInit = func(init celast.Expr) bool {
			return init.Kind() == celast.ListKind && len(init.AsList().Elements()) == 0
		}
	}
	if first.Kind() != celast.ComprehensionKind {
		return nil
	}
	c := first.AsComprehension()
	if !wantInit(c.AccuInit()) {
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

// sizeAtLeastOne is, when e compares the size of an expression with an
// int literal so that a size of zero makes it false (size(x) >= n or
// size(x) > n-1 with n >= 1, either way round, size(x) or x.size()), that
// expression x; nil otherwise. size and the comparison of two ints cannot
// fail.
func sizeAtLeastOne(e celast.Expr) celast.Expr {
	if e.Kind() != celast.CallKind || len(e.AsCall().Args()) != 2 {
		return nil
	}
	call := e.AsCall()
	sized, limit := call.Args()[0], call.Args()[1]
	// Whether size(x) > n or size(x) >= n.
	var strict bool
	switch call.FunctionName() {
	case operators.GreaterEquals, operators.Greater:
		strict = call.FunctionName() == operators.Greater
	case operators.LessEquals, operators.Less: // n <= size(x), n < size(x)
		strict = call.FunctionName() == operators.Less
		sized, limit = limit, sized
	default:
		return nil
	}
	n, ok := intLiteral(limit)
	if !ok || n < 0 || n == 0 && !strict || sized.Kind() != celast.CallKind || sized.AsCall().FunctionName() != overloads.Size {
		return nil
	}
	switch s := sized.AsCall(); {
	case !s.IsMemberFunction() && len(s.Args()) == 1:
		return s.Args()[0]
	case s.IsMemberFunction() && len(s.Args()) == 0:
		return s.Target()
	}
	return nil
}

// intLiteral is e's value when it is an int literal.
func intLiteral(e celast.Expr) (int64, bool) {
	if e.Kind() != celast.LiteralKind {
		return 0, false
	}
	n, ok := e.AsLiteral().(types.Int)
	return int64(n), ok
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
