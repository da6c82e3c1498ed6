package detect

import (
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

// boundedCost says whether cel-go's static estimate of a checked
// expression's cost is within costLimit whatever the facts are: the
// snapshot's lists, strings and bytes within the sizes above, everything
// else (the device and person facts, which the collector builds from what
// it stored, params not put in as literals) of any size. Such an
// expression can never reach the runtime limit, so it runs without the
// runtime cost tracker, which costs a rule's evaluation more than most of
// its own work (an allocation for most operators and one per expression).
// The runtime limit stays for every other expression: a comprehension
// over a device list, nested loops over snapshot lists, the custom
// functions' results.
//
// An expression that names a variable snapshot of its own (a comprehension
// or cel.bind shadowing the facts) is not bounded: the estimator knows
// values by their path from the variable's name.
func boundedCost(env *cel.Env, a *cel.Ast) bool {
	root := celast.NavigateAST(a.NativeRep())
	shadowed := len(celast.MatchDescendants(root, func(e celast.NavigableExpr) bool {
		if e.Kind() != celast.ComprehensionKind {
			return false
		}
		c := e.AsComprehension()
		return c.IterVar() == "snapshot" || c.IterVar2() == "snapshot" || c.AccuVar() == "snapshot"
	})) > 0
	if shadowed {
		return false
	}
	est, err := env.EstimateCost(a, snapshotSizes{})
	return err == nil && est.Max <= costLimit
}

// snapshotSizes is boundedCost's estimator: the sizes of the snapshot's
// values, and nothing else.
type snapshotSizes struct{}

func (snapshotSizes) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	return nil // the standard estimate
}

func (snapshotSizes) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if p := n.Path(); len(p) == 0 || p[0] != "snapshot" {
		return nil // unbounded
	}
	var most uint64
	switch n.Type().Kind() {
	case types.ListKind:
		most = MaxSnapshotList
	case types.StringKind:
		most = MaxSnapshotString
	case types.BytesKind:
		most = MaxSnapshotBytes
	case types.MapKind:
		most = 0
	default:
		return nil
	}
	return &cost.SizeEstimate{Min: 0, Max: most}
}
