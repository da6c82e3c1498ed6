package detect_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/policies"
)

// TestDescriptionParams: {{params.NAME}} in a description is replaced by
// the param's value when the rules load, so findings carry text a person
// reads; a reference to a param the rule does not have is a load error.
func TestDescriptionParams(t *testing.T) {
	e, err := detect.Load(mapFS(map[string]string{"rules/a.yaml": `rules:
  - id: r1
    title: T
    severity: low
    scope: device
    params: {intervals: 3, every: 5m, share: 0.6, kinds: [remote_access, peripherals], watch: {korean: {country: KR}}}
    description: >-
      Silent for more than {{params.intervals}} times its interval (else
      {{ params.every }}), {{params.share}} of the time, kinds
      {{params.kinds}}, explained in {{params.watch.korean.country}}.
    condition: device.id == "x"
` + quietTests}))
	if err != nil {
		t.Fatal(err)
	}
	const want = "Silent for more than 3 times its interval (else 5m), 0.6 of the time, kinds remote_access, peripherals, explained in KR."
	if got := e.Rules()[0].Description; got != want {
		t.Errorf("description %q, want %q", got, want)
	}
	findings, err := e.Evaluate(t.Context(), detect.ScopeDevice, detect.Facts{Now: time.Now(), Device: &detect.DeviceFacts{ID: "x"}})
	if err != nil || len(findings) != 1 || findings[0].Description != want {
		t.Errorf("findings %+v %v, want the description %q", findings, err, want)
	}

	for _, c := range []struct{ params, desc, want string }{
		{"{max_km: 500}", "more than {{params.max_kmh}} km", `rules/a.yaml:7:18: description: {{params.max_kmh}}: no such param (params here: max_km)`},
		{"{}", "more than {{params.max_km}} km", `rules/a.yaml:7:18: description: {{params.max_km}}: no such param (params here: none)`},
		{"{watch: {korean: x}}", "{{params.watch}}", `rules/a.yaml:7:18: description: {{params.watch}}: is a mapping; name one of its keys`},
		{"{watch: {korean: x}}", "{{params.watch.korean.pattern}}", `rules/a.yaml:7:18: description: {{params.watch.korean.pattern}}: params.watch.korean is not a mapping`},
		{"{max_km: 500}", "more than {{param.max_km}} km", `rules/a.yaml:7:18: description: only {{params.NAME}} is substituted`},
	} {
		_, err := detect.Load(mapFS(map[string]string{"rules/a.yaml": `rules:
  - id: r1
    title: T
    severity: low
    scope: device
    params: ` + c.params + `
    description: "` + c.desc + `"
    condition: device.id == "x"
` + quietTests}))
		if lines := errLines(t, err); len(lines) != 1 || lines[0] != c.want {
			t.Errorf("description %q with params %s: %q, want %q", c.desc, c.params, lines, c.want)
		}
	}
}

// TestShippedDescriptionsShowValues: no shipped rule's description, as
// alerts carry it, names a param instead of showing its value.
func TestShippedDescriptionsShowValues(t *testing.T) {
	e, err := detect.Load(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	leftover := regexp.MustCompile(`params\.|\{\{|\}\}`)
	for _, r := range e.Rules() {
		if m := leftover.FindString(r.Description); m != "" {
			t.Errorf("%s:%d: rule %s: description shows %q: write {{params.NAME}} for a param's value\n%s", r.File, r.Line, r.ID, m, r.Description)
		}
		for name := range r.Params {
			if strings.Contains(r.Description, "`"+name+"`") {
				t.Errorf("%s:%d: rule %s: description names the param `%s`: write {{params.%s}}", r.File, r.Line, r.ID, name, name)
			}
		}
	}
	for id, want := range map[string]string{
		"agent_silent":                  "has not reported for longer than 3 times its reporting interval",
		"egress_far_from_declared_city": "more than 500 km from the city",
		"laptop_farm_escalated":         "Laptops of 3 or more people",
	} {
		found := false
		for _, r := range e.Rules() {
			if r.ID == id {
				found = true
				if !strings.Contains(r.Description, want) {
					t.Errorf("rule %s: description %q, want it to say %q", id, r.Description, want)
				}
			}
		}
		if !found {
			t.Errorf("rule %s is missing", id)
		}
	}
}
