package detect

import (
	"reflect"
	"sync"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
)

// The sizes a snapshot the rules see keeps to: the collector refuses a
// report with a larger field (ingest's validation uses these), and the
// static cost bounds rely on them (boundedCost). A snapshot has no maps.
const (
	MaxSnapshotList   = 10000    // entries in any repeated field
	MaxSnapshotString = 4096     // bytes in any string field
	MaxSnapshotBytes  = 32 << 10 // bytes in any bytes field
)

// The sizes of the device and person facts within which more expressions
// run without the cost tracker (compiled.sized): the facts are built by
// the collector, and a device's lists (live agents, sanctioned tools, its
// cluster's co-signals, the person's sign-ins …) and strings (names,
// addresses, countries) are short. Facts past them are judged as before,
// with the tracker.
const (
	maxFactList   = 32
	maxFactString = 256
)

// boundedCost says whether cel-go's static estimate of a checked
// expression's cost is within costLimit whatever the facts are (always:
// the snapshot's lists, strings and bytes within the sizes above,
// everything else of any size), and whether it is when the device and
// person facts are within maxFactList and maxFactString (sized). cel-go
// derives its estimates and its runtime tracker's charges from one cost
// model, and tests that the estimate's maximum bounds what the tracker
// charges (common/cost/cost_bounds_test.go); the extensions declare their
// costs in it (cel.CostModel), and a function without one (ours) is
// charged 1 both ways. Such an
// expression can never reach the runtime limit, so it runs without the
// runtime cost tracker, which costs a rule's evaluation more than most of
// its own work (an allocation for most operators and one per expression).
// The runtime limit stays for every other expression: nested loops over
// snapshot lists, the custom functions' results, params not put in as
// literals, and facts past those sizes.
//
// An expression that names a variable of its own snapshot, device or
// person (a comprehension or cel.bind shadowing the facts) is bounded
// neither way: the estimator knows values by their path from the
// variable's name.
func boundedCost(env *cel.Env, a *cel.Ast) (always, sized bool) {
	facts := func(name string) bool { return name == "snapshot" || name == "device" || name == "person" }
	shadowed := len(celast.MatchDescendants(celast.NavigateAST(a.NativeRep()), func(e celast.NavigableExpr) bool {
		if e.Kind() != celast.ComprehensionKind {
			return false
		}
		c := e.AsComprehension()
		return facts(c.IterVar()) || facts(c.IterVar2()) || facts(c.AccuVar())
	})) > 0
	if shadowed {
		return false, false
	}
	est, err := env.EstimateCost(a, factSizes{})
	if err == nil && est.Max <= costLimit {
		return true, true
	}
	est, err = env.EstimateCost(a, factSizes{sized: true})
	return false, err == nil && est.Max <= costLimit
}

// factSizes is boundedCost's estimator: the sizes of the snapshot's
// values and, when sized, of the device's and person's.
type factSizes struct{ sized bool }

func (factSizes) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	return nil // the standard estimate
}

func (s factSizes) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	p := n.Path()
	if len(p) == 0 {
		return nil // unbounded
	}
	var list, str, bytes uint64
	switch {
	case p[0] == "snapshot":
		list, str, bytes = MaxSnapshotList, MaxSnapshotString, MaxSnapshotBytes
	case s.sized && (p[0] == "device" || p[0] == "person"):
		list, str, bytes = maxFactList, maxFactString, maxFactString
	default:
		return nil
	}
	var most uint64
	switch n.Type().Kind() {
	case types.ListKind:
		most = list
	case types.StringKind:
		most = str
	case types.BytesKind:
		most = bytes
	case types.MapKind:
		if p[0] == "snapshot" {
			most = 0 // a snapshot has none
		} else {
			most = list
		}
	default:
		return nil
	}
	return &cost.SizeEstimate{Min: 0, Max: most}
}

// sizedFacts says whether every string of v, a device's or person's facts,
// is at most maxFactString bytes and every list or map at most
// maxFactList entries: every exported field is looked at, as CEL may
// read it.
func sizedFacts(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		return v.Len() <= maxFactString
	case reflect.Slice, reflect.Array:
		if v.Len() > maxFactList {
			return false
		}
		if scalar(v.Type().Elem()) {
			return true
		}
		for i := range v.Len() {
			if !sizedFacts(v.Index(i)) {
				return false
			}
		}
	case reflect.Map:
		if v.Len() > maxFactList {
			return false
		}
		for it := v.MapRange(); it.Next(); {
			if !sizedFacts(it.Key()) || !sizedFacts(it.Value()) {
				return false
			}
		}
	case reflect.Pointer, reflect.Interface:
		return v.IsNil() || sizedFacts(v.Elem())
	case reflect.Struct:
		for _, i := range structFields(v.Type()) {
			if !sizedFacts(v.Field(i)) {
				return false
			}
		}
	}
	return true
}

// scalar says whether values of t hold no string, list or map.
func scalar(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Slice, reflect.Array, reflect.Map, reflect.Pointer, reflect.Interface:
		return false
	case reflect.Struct:
		return len(structFields(t)) == 0
	}
	return true
}

// factFields holds structFields' answers by type.
var factFields sync.Map // reflect.Type -> []int

// structFields are the indices of the exported fields of struct type t
// that are not scalar.
func structFields(t reflect.Type) []int {
	if f, ok := factFields.Load(t); ok {
		return f.([]int)
	}
	var out []int
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() && !scalar(f.Type) {
			out = append(out, i)
		}
	}
	factFields.Store(t, out)
	return out
}
