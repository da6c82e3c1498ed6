package detect_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
)

// A rule's params are put into its expressions as literals when it loads
// (inlineParams): each rule here checks a case where that could change
// what the rule does, and must fire, with the evidence or error it had
// when every evaluation read the params map.
func TestParamsAsLiterals(t *testing.T) {
	e := mustLoad(t, map[string]string{"r.yaml": `rules:
  - id: kinds
    title: T
    severity: low
    description: D
    scope: device
    params:
      ids: [a2, 3, 2.0, 1.5, true, null, {k: [v]}]
      nested: {list: [x, y], map: {"1": one}, nan: .nan, big: 18446744073709551615}
    condition: |
      "a2" in device.live_agent_ids && "a2" in params.ids && !("a9" in params.ids)
        && params.nested.nan != params.nested.nan && params.nested.big > 0u
    evidence: '{"ids": params.ids, "list": params.nested.list, "map": params.nested.map, "all": params}'
  - id: shadowed
    title: T
    severity: low
    description: D
    scope: device
    params: {x: 2}
    condition: '[{"x": 1}].exists(params, params.x == 1) && cel.bind(params, {"x": 3}, params.x == 3)'
  - id: presence
    title: T
    severity: low
    description: D
    scope: device
    params: {x: 1}
    condition: has(params.x) && !has(params.y)
  - id: z_bad_duration
    title: T
    severity: low
    description: D
    scope: device
    params: {d: soon}
    condition: device.report_interval > duration(params.d)
  - id: z_bad_pattern
    title: T
    severity: low
    description: D
    scope: device
    params: {p: "(", n: 1}
    condition: device.hostname.matches(params.p)
  - id: z_missing
    title: T
    severity: low
    description: D
    scope: device
    params: {n: 1}
    condition: params.nope == params.n
`})
	findings, err := e.Evaluate(t.Context(), detect.ScopeDevice, detect.Facts{
		Now: t0, Device: &detect.DeviceFacts{LiveAgentIDs: []string{"a1", "a2"}, Hostname: "h"},
	})
	if got, want := findingIDs(findings), []string{"kinds", "presence", "shadowed"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("fired %v, want %v (err %v)", got, want, err)
	}
	ev := findings[0].Evidence
	wantIDs := []any{"a2", int64(3), 2.0, 1.5, true, nil, map[string]any{"k": []any{"v"}}}
	if !reflect.DeepEqual(ev["ids"], wantIDs) || !reflect.DeepEqual(ev["list"], []any{"x", "y"}) ||
		!reflect.DeepEqual(ev["map"], map[string]any{"1": "one"}) {
		t.Errorf("evidence = %#v", ev)
	}
	if all, _ := ev["all"].(map[string]any); !reflect.DeepEqual(all["ids"], wantIDs) {
		t.Errorf("evidence all = %#v", ev["all"])
	}
	// The rules whose params make planning fail load all the same, and
	// fail when evaluated, each with the error it always had.
	if err == nil {
		t.Fatal("no error, want the z_ rules' errors")
	}
	lines := strings.Split(err.Error(), "\n")
	for i, want := range []string{
		"rule z_bad_duration: condition: ", "rule z_bad_pattern: condition: ", "rule z_missing: condition: no such key: nope",
	} {
		if i >= len(lines) || !strings.HasPrefix(lines[i], want) {
			t.Errorf("error %d = %q, want %q…", i, lines, want)
		}
	}
	if len(lines) != 3 {
		t.Errorf("errors = %q, want 3", lines)
	}
}
