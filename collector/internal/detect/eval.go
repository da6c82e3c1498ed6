package detect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/interpreter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// ErrUnknownScope is returned by Evaluate for a scope other than
// ScopeDevice and ScopeSnapshot.
var ErrUnknownScope = errors.New("unknown rule scope")

// ErrNoTime is returned by Evaluate when Facts.Now is zero: the engine has
// no clock of its own.
var ErrNoTime = errors.New("facts have no time (Now is zero)")

// activation supplies the variables of one Evaluate call. The values are
// adapted to CEL once per call; params changes per rule, so an activation
// serves one rule at a time.
//
// The rules of one call run in one execution frame over the activation,
// with the call's context set once (see run): cel-go's ContextEval would
// set up a frame, a cancellable context and its async bookkeeping for
// every rule, which cost more than a simple rule itself.
type activation struct {
	device, person, now, snapshot, params ref.Val
	// sn and pf are the snapshot and the person's facts the empty guards
	// read (nil: none, or an empty one).
	sn *agentv1.HostSnapshot
	pf *PersonFacts
	// sized says the device and person facts are within the fact sizes
	// (see compiled.sized).
	sized bool
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "device":
		return a.device, true
	case "person":
		return a.person, true
	case "now":
		return a.now, true
	case "params":
		return a.params, true
	case "snapshot":
		if a.snapshot != nil {
			return a.snapshot, true
		}
	}
	return nil, false
}

func (a *activation) Parent() cel.Activation { return nil }

func (e *Engine) activation(scope Scope, f Facts) *activation {
	a := &activation{now: types.Timestamp{Time: f.Now}, device: e.emptyDevice, person: e.emptyPerson}
	// The device's facts hold its person's (PersonFacts), which
	// DeviceFacts.sized reads with them.
	a.sized = f.Person == nil || f.Person.sized()
	switch {
	case f.Person != nil:
		a.pf = f.Person
	case f.Device != nil && f.Device.PersonFacts != nil:
		a.pf = f.Device.PersonFacts
	}
	if a.pf != nil {
		a.person = e.adapter.NativeToValue(a.pf)
	}
	if f.Device != nil {
		// The allowlist adds to what the facts already say; the facts
		// are copied only when that changes the (sorted) list.
		dev := f.Device
		if add := e.sanctioned.For(dev); len(add) > 0 || !sortedUnique(dev.SanctionedTools) {
			d := *dev
			d.SanctionedTools = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(d.SanctionedTools), add...))))
			dev = &d
		}
		a.device = e.adapter.NativeToValue(dev)
		a.sized = a.sized && dev.sized()
	}
	if scope == ScopeSnapshot {
		a.snapshot, a.sn = e.emptySnapshot, f.Snapshot
		if f.Snapshot != nil {
			a.snapshot = e.adapter.NativeToValue(f.Snapshot)
		}
	}
	return a
}

func sortedUnique(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}

func emptySnapshot() *agentv1.HostSnapshot { return &agentv1.HostSnapshot{} }

// Evaluate runs the enabled rules of scope over f and returns the findings
// in rule-id order. A rule that fails at run time (its cost limit, a
// missing map key, a cancelled ctx …) does not stop the others: Evaluate
// returns the findings of the rest together with an error joining one
// error per failed rule, each naming the rule id. Evaluate only reads f.
func (e *Engine) Evaluate(ctx context.Context, scope Scope, f Facts) ([]Finding, error) {
	return e.evaluate(ctx, scope, f, nil)
}

// evaluate is Evaluate without the rules whose ids are in off (the rules
// an administrator disabled, see Live.SetDisabled): they are not run, so
// they neither fire nor fail.
func (e *Engine) evaluate(ctx context.Context, scope Scope, f Facts, off map[string]bool) ([]Finding, error) {
	if scope != ScopeDevice && scope != ScopeSnapshot {
		return nil, fmt.Errorf("%w %q", ErrUnknownScope, scope)
	}
	return e.evaluateRules(ctx, scope, e.byScope[scope], f, off)
}

// EvaluateReport runs the device rules and, when f.Snapshot is set, the
// snapshot rules over f, as Evaluate with ScopeDevice and then with
// ScopeSnapshot would (the findings in that order, the errors of both),
// but in one evaluation: the facts are adapted to CEL, and the frame the
// rules run in is set up, once per report instead of once per scope.
func (e *Engine) EvaluateReport(ctx context.Context, f Facts) ([]Finding, error) {
	return e.evaluateReport(ctx, f, nil)
}

// evaluateReport is EvaluateReport without the rules in off (see evaluate).
func (e *Engine) evaluateReport(ctx context.Context, f Facts, off map[string]bool) ([]Finding, error) {
	if f.Snapshot == nil {
		return e.evaluateRules(ctx, ScopeDevice, e.byScope[ScopeDevice], f, off)
	}
	return e.evaluateRules(ctx, ScopeSnapshot, e.reportRules, f, off)
}

// evaluateRules runs rules, whose scopes the facts of scope cover, over f.
func (e *Engine) evaluateRules(ctx context.Context, scope Scope, rules []*compiledRule, f Facts, off map[string]bool) ([]Finding, error) {
	if len(off) > 0 || f.NeverReported {
		rules = slices.DeleteFunc(slices.Clone(rules), func(r *compiledRule) bool {
			return off[r.ID] || (f.NeverReported && !r.BeforeFirstReport)
		})
	}
	if f.Now.IsZero() {
		return nil, ErrNoTime
	}
	act := e.activation(scope, f)
	var (
		findings []Finding
		errs     []error
		frame    *evalFrame
	)
	for i, r := range rules {
		if err := ctx.Err(); err != nil {
			ids := make([]string, 0, len(rules)-i)
			for _, r := range rules[i:] {
				ids = append(ids, r.ID)
			}
			errs = append(errs, fmt.Errorf("rules %s not evaluated: %w", strings.Join(ids, ", "), err))
			break
		}
		if frame == nil { // made once ctx was seen live, as its first rule starts
			var err error
			if frame, err = newFrame(ctx, act); err != nil {
				return findings, err
			}
			defer frame.Close()
		}
		fnd, fired, err := r.eval(ctx, frame, act)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %s: %w", r.ID, err))
		}
		if fired {
			findings = append(findings, fnd)
		}
	}
	return findings, errors.Join(errs...)
}

// eval runs one rule. When the condition holds but the evidence fails, the
// finding is still returned (the detection matters more than its details),
// with the error under the evidence key "evidence_error", together with
// the error.
func (r *compiledRule) eval(ctx context.Context, frame *evalFrame, act *activation) (Finding, bool, error) {
	if r.cond.guard != nil && r.cond.guard.empty(act.sn, act.pf) {
		return Finding{}, false, nil // what the condition gives (see emptyGuard)
	}
	act.params = r.params
	out, err := run(ctx, r.cond, frame, act.sized)
	if err != nil {
		return Finding{}, false, fmt.Errorf("condition: %w", err)
	}
	fired, ok := out.(types.Bool)
	if !ok {
		return Finding{}, false, fmt.Errorf("condition: got %s, want bool", out.Type().TypeName())
	}
	if !fired {
		return Finding{}, false, nil
	}
	fnd := Finding{
		RuleID:      r.ID,
		Title:       r.Title,
		Severity:    r.Severity,
		Description: r.Description,
		Tags:        slices.Clone(r.Tags),
		Category:    r.Category(),
		Evidence:    map[string]any{},
	}
	if r.evid.prg == nil {
		return fnd, true, nil
	}
	ev, err := r.evidence(ctx, frame, act.sized)
	if err != nil {
		fnd.Evidence["evidence_error"] = err.Error()
		return fnd, true, fmt.Errorf("evidence: %w", err)
	}
	fnd.Evidence = ev
	return fnd, true, nil
}

func (r *compiledRule) evidence(ctx context.Context, frame *evalFrame, sized bool) (map[string]any, error) {
	out, err := run(ctx, r.evid, frame, sized)
	if err != nil {
		return nil, err
	}
	v, err := exportValue(out)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("got %s, want a map", out.Type().TypeName())
	}
	return m, nil
}

// evalFrame is the execution frame of one Evaluate call, in which its
// expressions run one after the other, and the cost limit of the one
// running (see run).
type evalFrame struct {
	*interpreter.ExecutionFrame
	limit uint64
}

// newFrame is the execution frame of one Evaluate call over act, whose
// comprehensions check ctx every interruptCheckFrequency iterations. The
// caller closes it.
func newFrame(ctx context.Context, act *activation) (*evalFrame, error) {
	f, err := interpreter.NewExecutionFrame(act)
	if err != nil {
		return nil, err
	}
	if err := f.SetContext(ctx, interruptCheckFrequency); err != nil {
		f.Close()
		return nil, err
	}
	return &evalFrame{ExecutionFrame: f}, nil
}

// run evaluates c in frame as ContextEval would in a frame of its own:
// with a cost limit of its own (costLimit for this expression alone), and
// an interrupted evaluation's error naming the context's cause.
//
// The expressions of one frame share one cost tracker, which the first
// one's program starts: each later expression moves the tracker's limit to
// costLimit past the cost spent before it. A tracker per expression (a
// copy of the program's) would hold the same limit, at the price of an
// allocation per expression, and its cost tracking is what a rule's
// evaluation spends most on besides the rule's own work. A bounded
// expression (compiled.bounded, or compiled.sized on sized facts) runs
// with the tracker taken off the frame: cel-go tracks the cost of
// whatever runs in a frame holding one.
func run(ctx context.Context, c compiled, frame *evalFrame, sized bool) (ref.Val, error) {
	prg, bounded := c.prg, c.bounded
	if c.sized != nil && sized {
		prg, bounded = c.sized, true
	}
	if t := frame.CostTracker(); t != nil {
		if bounded {
			frame.SetCostTracker(nil)
			defer frame.SetCostTracker(t)
		} else {
			frame.limit = cost.SafeAdd(t.ActualCost(), costLimit)
			t.Limit = &frame.limit
		}
	}
	out, _, err := prg.Eval(frame.ExecutionFrame)
	if err != nil && errors.Is(err, interpreter.InterruptError{}) {
		return out, fmt.Errorf("%w: %w", err, context.Cause(ctx))
	}
	return out, err
}

// exportValue converts a CEL value into a JSON-marshalable Go value:
//
//   - bool, int64, uint64, string and nil as themselves; doubles as
//     float64, except NaN and ±Inf, which JSON cannot hold, as the strings
//     "NaN", "+Inf", "-Inf";
//   - bytes as []byte (base64 in JSON, as in protojson);
//   - timestamps as RFC 3339 strings in UTC, e.g. "2026-01-01T11:00:00Z";
//   - durations as Go duration strings, e.g. "1h0m0s", which read well in
//     an alert and parse back with time.ParseDuration and CEL duration();
//   - lists as []any and maps as map[string]any, recursively, map keys
//     formatted as strings;
//   - protobuf messages as their protojson form with the proto field names
//     (the names rules use), decoded into map[string]any;
//   - native Go structs (DeviceFacts) as map[string]any keyed by cel tag,
//     a zero time.Time as the Unix epoch (which is how CEL reads it);
//   - optionals as their value, or nil when empty; types as their name.
func exportValue(v ref.Val) (any, error) {
	switch v := v.(type) {
	case types.Bool:
		return bool(v), nil
	case types.Int:
		return int64(v), nil
	case types.Uint:
		return uint64(v), nil
	case types.Double:
		return exportFloat(float64(v)), nil
	case types.String:
		return string(v), nil
	case types.Bytes:
		return []byte(v), nil
	case types.Null:
		return nil, nil
	case types.Timestamp:
		return exportTime(v.Time), nil
	case types.Duration:
		return v.Duration.String(), nil
	case *types.Optional:
		if !v.HasValue() {
			return nil, nil
		}
		return exportValue(v.GetValue())
	case *types.Err:
		return nil, v
	case *types.Unknown:
		return nil, fmt.Errorf("unknown value %v", v)
	case ref.Type:
		return v.TypeName(), nil
	case traits.Mapper:
		if kv, ok := v.Value().(map[ref.Val]ref.Val); ok {
			// A map the expression built (a literal, a comprehension's
			// result): its entries as they are, without an iterator over
			// a copy of the keys and a lookup of each.
			m := make(map[string]any, len(kv))
			for k, x := range kv {
				key, err := mapKey(k)
				if err != nil {
					return nil, err
				}
				if m[key], err = exportValue(x); err != nil {
					return nil, err
				}
			}
			return m, nil
		}
		m := map[string]any{}
		for it := v.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			key, err := mapKey(k)
			if err != nil {
				return nil, err
			}
			x, err := exportValue(v.Get(k))
			if err != nil {
				return nil, err
			}
			m[key] = x
		}
		return m, nil
	case traits.Lister:
		if elems, ok := v.Value().([]ref.Val); ok { // as for maps above
			s := make([]any, len(elems))
			for i, x := range elems {
				var err error
				if s[i], err = exportValue(x); err != nil {
					return nil, err
				}
			}
			return s, nil
		}
		n, ok := v.Size().(types.Int)
		if !ok {
			return nil, fmt.Errorf("list of unknown size")
		}
		s := make([]any, 0, int(n))
		for it := v.Iterator(); it.HasNext() == types.True; {
			x, err := exportValue(it.Next())
			if err != nil {
				return nil, err
			}
			s = append(s, x)
		}
		return s, nil
	}
	switch x := v.Value().(type) {
	case proto.Message:
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(x)
		if err != nil {
			return nil, err
		}
		var out any
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, err
		}
		return out, nil
	default:
		return exportNative(reflect.ValueOf(x))
	}
}

// exportNative converts a native Go value (a DeviceFacts or part of one).
func exportNative(v reflect.Value) (any, error) {
	if !v.IsValid() {
		return nil, nil
	}
	switch t := v.Type(); {
	case t == timeType:
		tm := v.Interface().(time.Time)
		if tm.IsZero() {
			// As CEL sees it: an unset time is the Unix epoch, as an unset
			// protobuf Timestamp.
			tm = time.Unix(0, 0)
		}
		return exportTime(tm), nil
	case t == durationType:
		return time.Duration(v.Int()).String(), nil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil, nil
		}
		return exportNative(v.Elem())
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint(), nil
	case reflect.Float32, reflect.Float64:
		return exportFloat(v.Float()), nil
	case reflect.String:
		return v.String(), nil
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return v.Bytes(), nil
		}
		s := make([]any, v.Len())
		for i := range s {
			x, err := exportNative(v.Index(i))
			if err != nil {
				return nil, err
			}
			s[i] = x
		}
		return s, nil
	case reflect.Map:
		m := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			x, err := exportNative(it.Value())
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(it.Key().Interface())] = x
		}
		return m, nil
	case reflect.Struct:
		names := celFieldNames(v.Type())
		m := make(map[string]any, len(names))
		for name, i := range names {
			x, err := exportNative(v.Field(i))
			if err != nil {
				return nil, err
			}
			m[name] = x
		}
		return m, nil
	}
	return nil, fmt.Errorf("cannot export Go value of type %s", v.Type())
}

func exportTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func exportFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return f
}

func mapKey(k ref.Val) (string, error) {
	switch k := k.(type) {
	case types.String:
		return string(k), nil
	case types.Int:
		return strconv.FormatInt(int64(k), 10), nil
	case types.Uint:
		return strconv.FormatUint(uint64(k), 10), nil
	case types.Bool:
		return strconv.FormatBool(bool(k)), nil
	}
	return "", fmt.Errorf("map key of type %s", k.Type().TypeName())
}

// jsonForm returns v as encoding/json would decode its JSON encoding:
// numbers become float64, []byte a base64 string. Tests compare evidence
// in this form, the form an API client sees.
func jsonForm(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}
