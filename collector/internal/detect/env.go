package detect

import (
	"fmt"
	"maps"
	"reflect"
	"slices"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

const (
	// costLimit bounds the work of one evaluation of one expression, in
	// CEL cost units (roughly one per operation and per list element
	// visited). The default rules cost well under 100.
	//
	// Rules are not rejected at load on their estimated cost: the facts
	// hold lists with no static size bound (live_agent_ids, every repeated
	// field of the snapshot, params), so env.EstimateCost gives an upper
	// bound of "unbounded" for any comprehension, which would reject
	// perfectly sane rules. The runtime limit is what stops a runaway rule
	// (an expression whose estimate is within the limit whatever the facts
	// runs without it, see boundedCost).
	costLimit = 1_000_000

	// interruptCheckFrequency is how many comprehension iterations pass
	// between checks of the evaluation context, so that a cancelled
	// context stops a long rule.
	interruptCheckFrequency = 100

	// maxRangeSize bounds lists.range(n).
	maxRangeSize = 100_000

	// deviceTypeName is the CEL name of DeviceFacts: ext.NativeTypes names
	// a Go struct after its package and type.
	deviceTypeName   = "detect.DeviceFacts"
	personTypeName   = "detect.PersonFacts"
	snapshotTypeName = "bonafide.agent.v1.HostSnapshot"
)

// envs holds the CEL environments of the two scopes. The snapshot
// environment extends the device one, so both share one type adapter.
type envs struct {
	device   *cel.Env
	snapshot *cel.Env
	adapter  types.Adapter
}

func newEnvs() (*envs, error) {
	device, err := cel.NewEnv(
		// Protobuf types must come before the native types, which compose
		// over the provider configured before them.
		cel.Types(&agentv1.HostSnapshot{}),
		ext.NativeTypes(reflect.TypeFor[DeviceFacts](), reflect.TypeFor[PersonFacts](), ext.ParseStructTags(true)),
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		ext.Strings(),
		// lists.range materialises its list; keep it far below what the
		// cost limit would allow anyway.
		ext.Lists(ext.ListsMaxRangeSize(maxRangeSize)),
		ext.Sets(),
		ext.Math(),
		ext.Bindings(),
		ext.TwoVarComprehensions(),
		ext.Regex(),
		ext.Network(),
		cel.Variable("device", cel.ObjectType(deviceTypeName)),
		cel.Variable("person", cel.ObjectType(personTypeName)),
		cel.Variable("now", cel.TimestampType),
		cel.Variable("params", cel.MapType(cel.StringType, cel.DynType)),
	)
	if err != nil {
		return nil, fmt.Errorf("device CEL environment: %w", err)
	}
	snapshot, err := device.Extend(
		cel.Variable("snapshot", cel.ObjectType(snapshotTypeName)),
		sourceAddresses(),
		interfacesContain(),
	)
	if err != nil {
		return nil, fmt.Errorf("snapshot CEL environment: %w", err)
	}
	return &envs{device: device, snapshot: snapshot, adapter: device.CELTypeAdapter()}, nil
}

func (v *envs) forScope(s Scope) *cel.Env {
	if s == ScopeDevice {
		return v.device
	}
	return v.snapshot
}

// exprIssue is a problem inside one CEL expression, in the expression's own
// coordinates: line is 1-based (0 when unknown), col 0-based in runes.
type exprIssue struct {
	line, col int
	msg       string
}

// exprKind says what an expression must produce.
type exprKind int

const (
	conditionExpr exprKind = iota
	evidenceExpr
)

// compiled is a planned expression.
type compiled struct {
	prg cel.Program // nil when the expression is missing or failed to compile
	// bounded says the expression's cost is within costLimit on any facts
	// (see boundedCost): prg runs without cel-go's runtime cost tracker.
	bounded bool
	// sized is the expression's program without the cost tracker when its
	// cost is within costLimit on facts within the fact sizes (and not on
	// any facts), for evaluations whose facts are; nil otherwise.
	sized cel.Program
	// guard is a condition's empty guard (nil for none).
	guard *emptyGuard
}

// compileExpr parses, type-checks and plans one expression, with the
// rule's params (nil for none) put in as literals (see inlineParams).
func compileExpr(env *cel.Env, src string, kind exprKind, params map[string]any) (compiled, []exprIssue) {
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		var out []exprIssue
		for _, e := range iss.Errors() {
			out = append(out, exprIssue{line: e.Location.Line(), col: e.Location.Column(), msg: e.Message})
		}
		return compiled{}, out
	}
	t := ast.OutputType()
	var guard *emptyGuard
	switch kind {
	case conditionExpr:
		if t.Kind() != types.BoolKind {
			return compiled{}, []exprIssue{{line: 1, msg: fmt.Sprintf("must be a bool expression, got %s", cel.FormatCELType(t))}}
		}
		guard = guardOf(ast)
	case evidenceExpr:
		ok := t.Kind() == types.MapKind
		if ok {
			k := t.Parameters()[0].Kind()
			ok = k == types.StringKind || k == types.DynKind
		}
		if !ok {
			return compiled{}, []exprIssue{{line: 1, msg: fmt.Sprintf("must be a map(string, dyn) expression, got %s", cel.FormatCELType(t))}}
		}
	}
	if inlined := inlineParams(env, ast, params); inlined != ast {
		// Planning folds constants (type conversions, regular
		// expressions): where a param makes that fail, the expression
		// keeps reading params, and fails at run time as it always did.
		if c, err := plan(env, inlined); err == nil {
			c.guard = guard
			if kind == conditionExpr && guard == nil {
				// A param compared with a size is a literal now.
				c.guard = guardOf(inlined)
			}
			return c, nil
		}
	}
	c, err := plan(env, ast)
	if err != nil {
		return compiled{}, []exprIssue{{line: 1, msg: err.Error()}}
	}
	c.guard = guard
	return c, nil
}

// plan makes the program of a checked expression: with cel-go's runtime
// cost tracker and costLimit, unless its cost is bounded anyway, and
// without them for sized facts where that bounds its cost.
func plan(env *cel.Env, ast *cel.Ast) (compiled, error) {
	free := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize), cel.InterruptCheckFrequency(interruptCheckFrequency)}
	always, sized := boundedCost(env, ast)
	if always {
		prg, err := env.Program(ast, free...)
		return compiled{prg: prg, bounded: true}, err
	}
	prg, err := env.Program(ast, append(free, cel.CostLimit(costLimit))...)
	if err != nil || !sized {
		return compiled{prg: prg}, err
	}
	c := compiled{prg: prg}
	c.sized, err = env.Program(ast, free...)
	return c, err
}

// inlineParams returns ast with each params.NAME replaced by the literal
// value of the rule's param NAME, which is fixed when the rule loads: no
// evaluation then looks the param up in the params map, and `x in
// params.kinds` is planned as a set lookup. Nothing else is evaluated
// ahead (a constant folder would run loops of unbounded cost at load).
// It returns ast itself when nothing was replaced or the result does not
// type-check (a rule that shadows params, say).
func inlineParams(env *cel.Env, a *cel.Ast, params map[string]any) *cel.Ast {
	if len(params) == 0 {
		return a
	}
	p := &paramsInliner{params: params}
	opt, err := cel.NewStaticOptimizer(p)
	if err != nil {
		return a
	}
	inlined, iss := opt.Optimize(env, a)
	if iss.Err() != nil || inlined == nil || p.replaced == 0 {
		return a
	}
	return inlined
}

// paramsInliner is the cel.ASTOptimizer of inlineParams; replaced counts
// the params.NAME it replaced.
type paramsInliner struct {
	params   map[string]any
	replaced int
}

func (p *paramsInliner) Optimize(ctx *cel.OptimizerContext, a *celast.AST) *celast.AST {
	root := celast.NavigateAST(a)
	shadowed := len(celast.MatchDescendants(root, func(e celast.NavigableExpr) bool {
		if e.Kind() != celast.ComprehensionKind {
			return false
		}
		c := e.AsComprehension()
		return c.IterVar() == "params" || c.IterVar2() == "params" || c.AccuVar() == "params"
	})) > 0
	if shadowed {
		return a
	}
	sels := celast.MatchDescendants(root, func(e celast.NavigableExpr) bool {
		if e.Kind() != celast.SelectKind {
			return false
		}
		s := e.AsSelect()
		return !s.IsTestOnly() && s.Operand().Kind() == celast.IdentKind && s.Operand().AsIdent() == "params"
	})
	for _, e := range sels {
		v, ok := p.params[e.AsSelect().FieldName()]
		if !ok {
			continue // a missing key fails at run time, as it did
		}
		budget := maxParamLiteral
		if lit, ok := paramLiteral(ctx, v, &budget); ok {
			ctx.UpdateExpr(e, lit)
			p.replaced++
		}
	}
	return a
}

// maxParamLiteral bounds the values (list elements, map entries,
// scalars) of a param put into an expression: each params.NAME gets a
// copy, so a long list referenced often would multiply the program's
// size, and a lookup in a long list costs its length anyway.
const maxParamLiteral = 256

// paramLiteral is v, a param value as the rule file gives it, as a CEL
// literal expression; false when v has more than *budget values.
func paramLiteral(ctx *cel.OptimizerContext, v any, budget *int) (celast.Expr, bool) {
	*budget--
	if *budget < 0 {
		return nil, false
	}
	switch v := v.(type) {
	case nil:
		return ctx.NewLiteral(types.NullValue), true
	case bool:
		return ctx.NewLiteral(types.Bool(v)), true
	case int64:
		return ctx.NewLiteral(types.Int(v)), true
	case uint64:
		return ctx.NewLiteral(types.Uint(v)), true
	case float64:
		return ctx.NewLiteral(types.Double(v)), true
	case string:
		return ctx.NewLiteral(types.String(v)), true
	case []any:
		if len(v) > *budget {
			return nil, false
		}
		elems := make([]celast.Expr, len(v))
		for i, x := range v {
			var ok bool
			if elems[i], ok = paramLiteral(ctx, x, budget); !ok {
				return nil, false
			}
		}
		return ctx.NewList(elems, nil), true
	case map[string]any:
		if len(v) > *budget {
			return nil, false
		}
		entries := make([]celast.EntryExpr, 0, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			x, ok := paramLiteral(ctx, v[k], budget)
			if !ok {
				return nil, false
			}
			entries = append(entries, ctx.NewMapEntry(ctx.NewLiteral(types.String(k)), x, false))
		}
		return ctx.NewMap(entries), true
	}
	return nil, false
}
