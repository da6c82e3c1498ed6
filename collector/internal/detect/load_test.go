package detect_test

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
)

// mapFS builds an in-memory policies tree from path → content.
func mapFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, content := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(content)}
	}
	return fsys
}

// errLines splits a joined Load error into its lines.
func errLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		t.Fatal("Load succeeded, want errors")
	}
	var le *detect.LoadError
	if !errors.As(err, &le) {
		t.Errorf("Load error %v holds no *detect.LoadError", err)
	}
	return strings.Split(err.Error(), "\n")
}

// quiet is a pair of test cases that makes a device rule on device.id
// complete; rules in these tables append it where they need to load.
const quietTests = `    tests:
      - {name: fires, facts: {now: 2026-01-01T00:00:00Z, device: {id: x}}, fires: true}
      - {name: quiet, facts: {now: 2026-01-01T00:00:00Z, device: {id: y}}, fires: false}
`

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		// want holds one entry per error line, in order; each must be a
		// prefix of its line (CEL syntax messages are long).
		want []string
	}{
		{
			name: "unknown key",
			files: map[string]string{"rules/a.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    condition: "true"
    conditon: "false"
`},
			want: []string{`rules/a.yaml:7:5: unknown key "conditon" in a rule (known keys: id, title, severity, description, tags, enabled, auto_resolve, before_first_report, scope, params, condition, evidence, tests)`},
		},
		{
			name: "unknown top-level key",
			files: map[string]string{"a.yaml": `rule:
  - id: r1
`},
			want: []string{`a.yaml:1:1: unknown key "rule" in the file (known keys: rules)`},
		},
		{
			name: "missing id",
			files: map[string]string{"a.yaml": `rules:
  - title: T
    severity: low
    description: D
    condition: "true"
`},
			want: []string{`a.yaml:2:5: rule: missing required key "id"`},
		},
		{
			name: "missing title and condition",
			files: map[string]string{"a.yaml": `rules:
  - id: r1
    severity: low
    description: D
`},
			want: []string{
				`a.yaml:2:5: rule: missing required key "title"`,
				`a.yaml:2:5: rule: missing required key "condition"`,
			},
		},
		{
			name: "empty condition and duplicate test names",
			files: map[string]string{"a.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    condition: ""
    tests:
      - {name: a, facts: {now: 2026-01-01T00:00:00Z}, fires: true}
      - {name: a, facts: {now: 2026-01-01T00:00:00Z}, fires: false}
`},
			want: []string{
				`a.yaml:6:16: condition: must not be empty`,
				`a.yaml:9:16: name: duplicate test name "a" (first at line 8)`,
			},
		},
		{
			name: "bad id",
			files: map[string]string{"a.yaml": `rules:
  - id: Agent-Silent
    title: T
    severity: low
    description: D
    condition: "true"
`},
			want: []string{`a.yaml:2:9: id: "Agent-Silent" must match ^[a-z][a-z0-9_]{1,63}$`},
		},
		{
			name: "duplicate id across files",
			files: map[string]string{
				"rules/a.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    scope: device
    condition: device.id == "x"
` + quietTests,
				"rules/sub/b.yml": `# the same id again
rules:
  - id: r1
    title: T
    severity: low
    description: D
    scope: device
    condition: device.id == "x"
` + quietTests,
			},
			want: []string{`rules/sub/b.yml:3:9: id: duplicate rule id "r1" (first defined at rules/a.yaml:2)`},
		},
		{
			name: "duplicate key",
			files: map[string]string{"a.yaml": `rules:
  - id: r1
    title: T
    title: U
    severity: low
    description: D
    condition: "true"
`},
			want: []string{`a.yaml:4:5: duplicate key "title"`},
		},
		{
			name: "bad severity",
			files: map[string]string{"a.yaml": `rules:
  - id: r1
    title: T
    severity: urgent
    description: D
    condition: "true"
`},
			want: []string{`a.yaml:4:15: severity: "urgent" is not one of low, medium, high, critical`},
		},
		{
			name: "bad scope, tag and enabled",
			files: map[string]string{"a.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    scope: fleet
    tags: [T1562.1, lateral]
    enabled: "yes"
    condition: "true"
`},
			want: []string{
				`a.yaml:6:12: scope: "fleet" is not one of device, snapshot`,
				`a.yaml:7:12: tags: "T1562.1" is neither an ATT&CK id (T1234, T1234.001) nor a lowercase tag`,
				`a.yaml:8:14: enabled: expected true or false`,
			},
		},
		{
			name: "CEL syntax error on the third line of a block",
			files: map[string]string{"a.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    scope: device
    condition: |
      device.id == "x"
        && device.hostname != ""
        && )
`},
			want: []string{`a.yaml:10:12: condition: Syntax error: mismatched input ')'`},
		},
		{
			name: "CEL syntax error in a folded block",
			files: map[string]string{"a.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    scope: device
    condition: >-
      device.id == "x" &&
      device.hostname !=
`},
			want: []string{`a.yaml:9:25: condition: Syntax error: mismatched input '<EOF>'`},
		},
		{
			name: "undefined field on device",
			files: map[string]string{"a.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    scope: device
    condition: now - device.last_sen > duration("1h")
`},
			want: []string{`a.yaml:7:28: condition: undefined field 'last_sen'`},
		},
		{
			name: "undefined field in a quoted evidence expression",
			files: map[string]string{"a.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    condition: "true"
    evidence: "{'host': snapshot.identity.hostnme}"
`},
			want: []string{`a.yaml:7:42: evidence: undefined field 'hostnme'`},
		},
		{
			name: "snapshot in a device rule",
			files: map[string]string{"a.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    scope: device
    condition: snapshot.identity.hostname == ""
`},
			want: []string{`a.yaml:7:16: condition: undeclared reference to 'snapshot'`},
		},
		{
			name: "non-bool condition",
			files: map[string]string{"a.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    scope: device
    condition: device.hostname
`},
			want: []string{`a.yaml:7:16: condition: must be a bool expression, got string`},
		},
		{
			name: "non-map evidence",
			files: map[string]string{"a.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    scope: device
    condition: "true"
    evidence: "[device.hostname]"
`},
			want: []string{`a.yaml:8:16: evidence: must be a map(string, dyn) expression, got list(string)`},
		},
		{
			name: "test case errors",
			files: map[string]string{"a.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    scope: device
    condition: "true"
    tests:
      - name: a
        facts: {now: 2026-01-01T00:00:00Z, device: {last_sen: 2026-01-01T00:00:00Z}}
        fires: true
      - name: b
        facts: {now: 2026-01-01T00:00:00Z, snapshot: {}}
      - name: c
        facts: {now: yesterday, device: {report_interval: 5 minutes}}
        fires: false
        evidence: {x: 1}
`},
			want: []string{
				`a.yaml:10:53: unknown key "last_sen" in facts.device (known keys: activity, agent_id, agent_version, claims_device, clock_skew,`,
				`a.yaml:12:9: test case: missing required key "fires"`,
				`a.yaml:13:44: facts.snapshot: only rules of scope snapshot see a snapshot`,
				`a.yaml:14:9: test case: evidence is only checked with fires: true`,
				`a.yaml:15:22: facts.now: "yesterday" is not an RFC 3339 time such as 2026-01-01T12:00:00Z`,
				`a.yaml:15:59: facts.device.report_interval: "5 minutes" is not a duration such as 300s or 1h30m`,
			},
		},
		{
			name: "snapshot facts that are not a HostSnapshot",
			files: map[string]string{"a.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    condition: "true"
    tests:
      - name: a
        facts:
          now: 2026-01-01T00:00:00Z
          snapshot:
            identity: {hostnme: h}
        fires: true
`},
			want: []string{`a.yaml:12:13: facts.snapshot: unknown field "hostnme"`},
		},
		{
			name: "YAML syntax error",
			files: map[string]string{"a.yaml": `rules:
  - id: r1
    title: [T
`},
			want: []string{`a.yaml:3: did not find expected ',' or ']'`},
		},
		{
			name:  "YAML parser error on a block mapping",
			files: map[string]string{"a.yaml": "rules:\n  - id: r1\n    title: T\n   severity: low\n"},
			want:  []string{`a.yaml:2: did not find expected '-' indicator`},
		},
		{
			name:  "YAML scanner error",
			files: map[string]string{"a.yaml": "rules:\n  - id: r1\n    title: \"T\n"},
			want:  []string{`a.yaml:3: found unexpected end of stream`},
		},
		{
			name: "errors of several files together",
			files: map[string]string{
				"rules/a.yaml": "rules:\n  - id: r1\n    title: T\n    severity: bad\n    description: D\n    condition: 'true'\n",
				"rules/b.yaml": "rules: {}\n",
			},
			want: []string{
				`rules/a.yaml:4:15: severity: "bad" is not one of low, medium, high, critical`,
				`rules/b.yaml:1:8: rules: expected a list of rules`,
			},
		},
		{
			name: "self-referencing anchor",
			files: map[string]string{"a.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    condition: "true"
    params: &p {x: *p}
`},
			want: []string{`a.yaml:7:13: value nested more than 64 levels deep`},
		},
		{
			name: "alias expansion bomb",
			files: map[string]string{"a.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    condition: "true"
    params:
      a: &a [x, x, x, x, x, x, x, x, x, x]
      b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
      c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
      d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
      e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
      f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
      g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
      h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
      i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
`},
			want: []string{`a.yaml:8:14: the file expands to more than 1048576 YAML values (aliases?)`},
		},
		{
			name:  "two documents",
			files: map[string]string{"a.yaml": "rules: []\n---\nrules: []\n"},
			want:  []string{`a.yaml:2:1: a rule file holds one YAML document`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := detect.Load(mapFS(tt.files))
			if e != nil {
				t.Errorf("Load returned an engine along with errors")
			}
			got := errLines(t, err)
			if len(got) != len(tt.want) {
				t.Fatalf("Load errors:\n%s\nwant %d errors:\n%s", err, len(tt.want), strings.Join(tt.want, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("error %d:\n got %s\nwant %s…", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestLoadSkipsCatalogsAndOtherFiles(t *testing.T) {
	rule := `rules:
  - id: r1
    title: T
    severity: low
    description: D
    scope: device
    condition: device.id == "x"
` + quietTests
	e, err := detect.Load(mapFS(map[string]string{
		"rules/a.yaml":           rule,
		"rules/README.md":        "not yaml: [",
		"catalog/remote.yaml":    "tools: [{id: anydesk}]",
		"rules/.hidden.yaml":     "garbage: [",
		".git/config.yaml":       "garbage: [",
		"rules/empty.yaml":       "",
		"rules/only-null.yml":    "rules:\n",
		"rules/deep/catalog.yml": "rules: []\n",
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	rules := e.Rules()
	if len(rules) != 1 || rules[0].ID != "r1" || rules[0].File != "rules/a.yaml" {
		t.Fatalf("Rules() = %+v, want only r1 from rules/a.yaml", rules)
	}
}

func TestLoadMergeKeys(t *testing.T) {
	e, err := detect.Load(mapFS(map[string]string{"a.yaml": `rules:
  - id: r1
    title: T
    severity: low
    description: D
    scope: device
    params: &defaults {a: 1, b: two}
    condition: device.hostname == params.b && device.id == "x"
    tests:
      - name: fires
        facts:
          now: 2026-01-01T00:00:00Z
          device: &dev {id: x, hostname: two}
        fires: true
      - name: explicit keys win over merged ones
        facts:
          now: 2026-01-01T00:00:00Z
          device: {<<: *dev, hostname: three}
        fires: false
  - id: r2
    title: T
    severity: low
    description: D
    scope: device
    params: {<<: *defaults, b: 2}
    condition: params.a == 1 && params.b == 2
    enabled: false
`}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, r := range e.Test(t.Context()) {
		if r.Err != nil {
			t.Errorf("%s %q: %v", r.RuleID, r.Name, r.Err)
		}
	}
	rules := e.Rules()
	if got := rules[1].Params; len(got) != 2 || got["a"] != int64(1) || got["b"] != int64(2) {
		t.Errorf("r2 params = %#v, want a: 1, b: 2", got)
	}
}
