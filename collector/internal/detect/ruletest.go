package detect

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// TestResult is the outcome of one test case of a rule.
type TestResult struct {
	RuleID string
	Name   string
	File   string
	Line   int   // the line of the test case
	Err    error // nil when the case passed
}

// coverageTestName names the result that reports an enabled rule without
// both a firing and a non-firing test case.
const coverageTestName = "coverage"

// Test runs every rule's own test cases through the evaluator Evaluate
// uses, disabled rules included, and returns one result per case in
// rule-id order. An enabled rule that lacks a case with fires: true or one
// with fires: false gets an extra failing result named "coverage":
// policies are data with tests.
func (e *Engine) Test(ctx context.Context) []TestResult {
	var out []TestResult
	for _, r := range e.rules {
		var fires, quiet bool
		for _, tc := range r.tests {
			fires = fires || tc.fires
			quiet = quiet || !tc.fires
			out = append(out, TestResult{
				RuleID: r.ID, Name: tc.name, File: r.File, Line: tc.line,
				Err: e.runTest(ctx, r, tc),
			})
		}
		if !r.Enabled || (fires && quiet) {
			continue
		}
		var missing []string
		if !fires {
			missing = append(missing, "fires: true")
		}
		if !quiet {
			missing = append(missing, "fires: false")
		}
		out = append(out, TestResult{
			RuleID: r.ID, Name: coverageTestName, File: r.File, Line: r.Line,
			Err: fmt.Errorf("an enabled rule needs test cases that fire and that do not; missing a case with %s", strings.Join(missing, " and a case with ")),
		})
	}
	return out
}

func (e *Engine) runTest(ctx context.Context, r *compiledRule, tc testCase) error {
	act := e.activation(r.Scope, tc.facts)
	frame, err := newFrame(ctx, act)
	if err != nil {
		return err
	}
	defer frame.Close()
	fnd, fired, err := r.eval(ctx, frame, act)
	if err != nil {
		return fmt.Errorf("evaluation failed: %w", err)
	}
	switch {
	case tc.fires && !fired:
		return fmt.Errorf("expected the rule to fire, it did not")
	case !tc.fires && fired:
		return fmt.Errorf("expected no finding, the rule fired with evidence %s", render(fnd.Evidence))
	}
	if tc.evidence == nil {
		return nil
	}
	got, err := jsonForm(fnd.Evidence)
	if err != nil {
		return fmt.Errorf("evidence is not JSON: %w", err)
	}
	return subset(tc.evidence, got, "evidence")
}

// subset reports the first place where got does not contain want: maps
// must hold want's keys (and may hold more), lists and scalars must be
// equal (list elements compared the same way).
func subset(want, got any, path string) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: expected a map %s, got %s", path, render(want), render(got))
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("%s.%s: expected %s, the key is missing (evidence %s)", path, k, render(w[k]), render(got))
			}
			if err := subset(w[k], gv, path+"."+k); err != nil {
				return err
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: expected %s, got %s", path, render(want), render(got))
		}
		for i := range w {
			if err := subset(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	default:
		if !reflect.DeepEqual(want, got) {
			return fmt.Errorf("%s: expected %s, got %s", path, render(want), render(got))
		}
		return nil
	}
}

func render(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}
