package detect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

const (
	// maxNodeVisits bounds the YAML nodes one file may expand to, so that
	// aliases of aliases ("billion laughs") or a self-referencing anchor
	// cannot make Load run away.
	maxNodeVisits = 1 << 20
	// maxDepth bounds the nesting of YAML values.
	maxDepth = 64
)

var (
	ruleIDPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{1,63}$`)
	// A tag is a MITRE ATT&CK technique id (T1234 or T1234.001) or a
	// lowercase word.
	tagPattern      = regexp.MustCompile(`^(T[0-9]{4}(\.[0-9]{3})?|[a-z][a-z0-9_.:-]{0,63})$`)
	yamlLinePattern = regexp.MustCompile(`(?s)^yaml: line ([0-9]+): (.*)$`)
	// protobuf-go's errors start "proto:" and a JSON position, followed by
	// a space or, deliberately, a no-break space.
	protojsonPattern = regexp.MustCompile(`^proto:[ \x{a0}]*(\(line [0-9]+:[0-9]+\):[ \x{a0}]*)?`)
)

var (
	ruleKeys  = []string{"id", "title", "severity", "description", "tags", "enabled", "auto_resolve", "before_first_report", "scope", "params", "condition", "evidence", "tests"}
	testKeys  = []string{"name", "facts", "fires", "evidence"}
	factsKeys = []string{"now", "device", "person", "snapshot"}
)

// testCase is one entry of a rule's tests.
type testCase struct {
	name  string
	line  int
	facts Facts
	fires bool
	// evidence is the expected subset of the finding's evidence in its
	// JSON form (see jsonForm); nil when the case does not check evidence.
	evidence map[string]any
}

// fileParser decodes one rule file from its yaml.Node tree, collecting
// every error with its position.
type fileParser struct {
	file   string
	lines  []string // the file's lines, for mapping CEL positions
	envs   *envs
	errs   []error
	visits int
}

// pair is one key of a mapping.
type pair struct {
	key  string
	k, v *yaml.Node
}

func parseFile(file string, data []byte, envs *envs) ([]*compiledRule, []error) {
	p := &fileParser{file: file, envs: envs}
	p.lines = strings.Split(string(data), "\n")
	for i, l := range p.lines {
		p.lines[i] = strings.TrimSuffix(l, "\r")
	}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file holds no rules
		}
		return nil, []error{p.yamlError(err)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, []error{p.yamlError(err)}
	default:
		p.errorf(&extra, "a rule file holds one YAML document")
	}

	var rules []*compiledRule
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = p.resolve(root.Content[0])
	}
	switch {
	case isNull(root):
	case root.Kind != yaml.MappingNode:
		p.errorf(root, "expected a mapping with the key \"rules\"")
	default:
		for _, kv := range p.mapping(root, 0) {
			if kv.key != "rules" {
				p.unknownKey(kv, "the file", []string{"rules"})
				continue
			}
			seq := p.resolve(kv.v)
			if isNull(seq) {
				continue
			}
			if seq.Kind != yaml.SequenceNode {
				p.errorf(seq, "rules: expected a list of rules")
				continue
			}
			for _, item := range seq.Content {
				if r := p.rule(item); r != nil {
					rules = append(rules, r)
				}
			}
		}
	}
	return rules, p.errs
}

// rule decodes and compiles one rule. It returns nil when the rule has no
// valid id; otherwise the rule, even if other parts of it had errors (they
// are in p.errs), so that duplicate ids are still found.
func (p *fileParser) rule(n *yaml.Node) *compiledRule {
	n = p.resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "rule: expected a mapping")
		return nil
	}
	r := &compiledRule{Rule: Rule{Enabled: true, Scope: ScopeSnapshot, File: p.file, Line: n.Line}}
	var (
		idNode, condNode, evidNode, testsNode *yaml.Node
		seen                                  = map[string]*yaml.Node{} // key → value
	)
	for _, kv := range p.mapping(n, 0) {
		seen[kv.key] = kv.v
		switch kv.key {
		case "id":
			v, ok := p.str(kv.v, "id")
			if !ok {
				continue
			}
			if !ruleIDPattern.MatchString(v) {
				p.errorf(kv.v, "id: %q must match %s", v, ruleIDPattern)
				continue
			}
			r.ID, r.Line, r.idColumn, idNode = v, kv.k.Line, kv.v.Column, kv.v
		case "title":
			r.Title, _ = p.str(kv.v, "title")
		case "description":
			r.Description, _ = p.str(kv.v, "description")
		case "severity":
			v, ok := p.str(kv.v, "severity")
			if ok && !slices.Contains(severities, v) {
				p.errorf(kv.v, "severity: %q is not one of %s", v, strings.Join(severities, ", "))
			}
			r.Severity = v
		case "tags":
			r.Tags = p.tags(kv.v)
		case "enabled":
			r.Enabled, _ = p.boolean(kv.v, "enabled")
		case "auto_resolve":
			r.AutoResolve, _ = p.boolean(kv.v, "auto_resolve")
		case "before_first_report":
			r.BeforeFirstReport, _ = p.boolean(kv.v, "before_first_report")
		case "scope":
			v, ok := p.str(kv.v, "scope")
			if ok && v != string(ScopeDevice) && v != string(ScopeSnapshot) {
				p.errorf(kv.v, "scope: %q is not one of device, snapshot", v)
				continue
			}
			if ok {
				r.Scope = Scope(v)
			}
		case "params":
			r.Params = p.params(kv.v)
		case "condition":
			r.Condition, _ = p.str(kv.v, "condition")
			condNode = p.resolve(kv.v)
		case "evidence":
			r.Evidence, _ = p.str(kv.v, "evidence")
			evidNode = p.resolve(kv.v)
		case "tests":
			testsNode = kv.v
		default:
			p.unknownKey(kv, "a rule", ruleKeys)
		}
	}
	for _, key := range []string{"id", "title", "severity", "description", "condition"} {
		if seen[key] == nil {
			p.errorf(n, "rule: missing required key %q", key)
		}
	}
	for _, k := range []struct{ key, value string }{
		{"title", r.Title}, {"description", r.Description}, {"condition", r.Condition},
	} {
		// Non-scalars were reported by str already.
		if v := seen[k.key]; v != nil && p.resolve(v).Kind == yaml.ScalarNode && strings.TrimSpace(k.value) == "" {
			p.errorf(p.resolve(v), "%s: must not be empty", k.key)
		}
	}
	if r.Params == nil {
		r.Params = map[string]any{}
	}
	r.Description = p.describe(seen["description"], r.Description, r.Params)
	r.params = p.envs.adapter.NativeToValue(r.Params)

	env := p.envs.forScope(r.Scope)
	if strings.TrimSpace(r.Condition) != "" {
		r.cond = p.compile(env, condNode, "condition", conditionExpr, r.Params)
	}
	if evidNode != nil && strings.TrimSpace(r.Evidence) != "" {
		r.evid = p.compile(env, evidNode, "evidence", evidenceExpr, r.Params)
	}
	if testsNode != nil {
		r.tests = p.tests(testsNode, r.Scope)
	}
	if idNode == nil {
		return nil
	}
	return r
}

// compile compiles one expression, reporting CEL errors at their position
// in the YAML file.
func (p *fileParser) compile(env *cel.Env, n *yaml.Node, field string, kind exprKind, params map[string]any) compiled {
	c, issues := compileExpr(env, n.Value, kind, params)
	for _, is := range issues {
		line, col := p.exprPos(n, is.line, is.col)
		p.errs = append(p.errs, &LoadError{File: p.file, Line: line, Column: col, Msg: field + ": " + is.msg})
	}
	return c
}

// tests decodes a rule's test cases.
func (p *fileParser) tests(n *yaml.Node, scope Scope) []testCase {
	n = p.resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "tests: expected a list of test cases")
		return nil
	}
	var out []testCase
	names := map[string]int{}
	for _, item := range n.Content {
		item = p.resolve(item)
		if item.Kind != yaml.MappingNode {
			p.errorf(item, "tests: expected a mapping")
			continue
		}
		tc := testCase{line: item.Line}
		seen := map[string]bool{}
		for _, kv := range p.mapping(item, 0) {
			seen[kv.key] = true
			switch kv.key {
			case "name":
				tc.name, _ = p.str(kv.v, "name")
				if first, dup := names[tc.name]; dup {
					p.errorf(kv.v, "name: duplicate test name %q (first at line %d)", tc.name, first)
				} else {
					names[tc.name] = kv.v.Line
				}
			case "facts":
				tc.facts = p.facts(kv.v, scope)
			case "fires":
				tc.fires, _ = p.boolean(kv.v, "fires")
			case "evidence":
				tc.evidence = p.expectedEvidence(kv.v)
			default:
				p.unknownKey(kv, "a test case", testKeys)
			}
		}
		for _, k := range []string{"name", "facts", "fires"} {
			if !seen[k] {
				p.errorf(item, "test case: missing required key %q", k)
			}
		}
		if tc.evidence != nil && !tc.fires {
			p.errorf(item, "test case: evidence is only checked with fires: true")
		}
		out = append(out, tc)
	}
	return out
}

func (p *fileParser) facts(n *yaml.Node, scope Scope) Facts {
	n = p.resolve(n)
	var f Facts
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "facts: expected a mapping")
		return f
	}
	hasNow := false
	for _, kv := range p.mapping(n, 0) {
		switch kv.key {
		case "now":
			hasNow = true
			f.Now, _ = p.timestamp(kv.v, "facts.now")
		case "device":
			f.Device = p.deviceFacts(kv.v)
		case "person":
			f.Person = &PersonFacts{}
			if !isNull(p.resolve(kv.v)) {
				p.setStruct(reflect.ValueOf(f.Person).Elem(), kv.v, "facts.person")
			}
		case "snapshot":
			if scope != ScopeSnapshot {
				p.errorf(kv.k, "facts.snapshot: only rules of scope snapshot see a snapshot")
				continue
			}
			f.Snapshot = p.snapshot(kv.v)
		default:
			p.unknownKey(kv, "facts", factsKeys)
		}
	}
	if !hasNow {
		p.errorf(n, "facts: missing required key \"now\"")
	}
	return f
}

// deviceFacts decodes DeviceFacts by the snake_case names of its cel tags,
// the names rules use.
func (p *fileParser) deviceFacts(n *yaml.Node) *DeviceFacts {
	d := &DeviceFacts{}
	if !isNull(p.resolve(n)) {
		p.setStruct(reflect.ValueOf(d).Elem(), n, "facts.device")
	}
	return d
}

// celFieldNames maps the CEL names of a struct's exported fields (the
// first part of the cel tag, else the Go name) to field indexes.
func celFieldNames(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("cel"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = i
	}
	return m
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[time.Duration]()
)

func (p *fileParser) setField(f reflect.Value, n *yaml.Node, field string) {
	n = p.resolve(n)
	switch {
	case f.Type() == timeType:
		if t, ok := p.timestamp(n, field); ok {
			f.Set(reflect.ValueOf(t))
		}
	case f.Type() == durationType:
		v, ok := p.str(n, field)
		if !ok {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			p.errorf(n, "%s: %q is not a duration such as 300s or 1h30m", field, v)
			return
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		if v, ok := p.str(n, field); ok {
			f.SetString(v)
		}
	case f.Kind() == reflect.Bool:
		if v, ok := p.boolean(n, field); ok {
			f.SetBool(v)
		}
	case f.Kind() >= reflect.Int && f.Kind() <= reflect.Int64:
		var v int64
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil || f.OverflowInt(v) {
			p.errorf(n, "%s: expected an integer", field)
			return
		}
		f.SetInt(v)
	case f.Kind() >= reflect.Uint && f.Kind() <= reflect.Uint64:
		var v uint64
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil || f.OverflowUint(v) {
			p.errorf(n, "%s: expected a non-negative integer", field)
			return
		}
		f.SetUint(v)
	case f.Kind() == reflect.Float32 || f.Kind() == reflect.Float64:
		var v float64
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&v) != nil {
			p.errorf(n, "%s: expected a number", field)
			return
		}
		f.SetFloat(v)
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			p.errorf(n, "%s: expected a list of strings", field)
			return
		}
		s := reflect.MakeSlice(f.Type(), 0, len(n.Content))
		for _, item := range n.Content {
			if v, ok := p.str(item, field); ok {
				s = reflect.Append(s, reflect.ValueOf(v).Convert(f.Type().Elem()))
			}
		}
		f.Set(s)
	case f.Kind() == reflect.Struct:
		p.setStruct(f, n, field)
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			p.errorf(n, "%s: expected a list", field)
			return
		}
		s := reflect.MakeSlice(f.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p.setStruct(s.Index(i), item, fmt.Sprintf("%s[%d]", field, i))
		}
		f.Set(s)
	default:
		// A DeviceFacts field of a type this decoder does not know yet.
		p.errorf(n, "%s: fields of Go type %s cannot be set in tests", field, f.Type())
	}
}

// setStruct decodes a mapping into a struct by the CEL names of its
// fields.
func (p *fileParser) setStruct(v reflect.Value, n *yaml.Node, field string) {
	n = p.resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: expected a mapping", field)
		return
	}
	fields := celFieldNames(v.Type())
	for _, kv := range p.mapping(n, 0) {
		i, ok := fields[kv.key]
		if !ok {
			names := slices.Sorted(maps.Keys(fields))
			p.unknownKey(kv, field, names)
			continue
		}
		p.setField(v.Field(i), kv.v, field+"."+kv.key)
	}
}

// snapshot decodes a HostSnapshot written as the YAML form of its protojson
// encoding.
func (p *fileParser) snapshot(n *yaml.Node) *agentv1.HostSnapshot {
	snap := &agentv1.HostSnapshot{}
	v, ok := p.toAny(n, 0)
	if !ok || v == nil {
		return snap
	}
	b, err := json.Marshal(v)
	if err == nil {
		err = protojson.Unmarshal(b, snap)
	}
	if err != nil {
		msg := protojsonPattern.ReplaceAllString(err.Error(), "")
		p.errorf(n, "facts.snapshot: %s", msg)
	}
	return snap
}

func (p *fileParser) expectedEvidence(n *yaml.Node) map[string]any {
	v, ok := p.toAny(n, 0)
	if !ok {
		return nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		p.errorf(n, "evidence: expected a mapping")
		return nil
	}
	j, err := jsonForm(m)
	if err != nil {
		p.errorf(n, "evidence: %v", err)
		return nil
	}
	return j.(map[string]any)
}

func (p *fileParser) params(n *yaml.Node) map[string]any {
	v, ok := p.toAny(n, 0)
	if !ok || v == nil {
		return nil
	}
	m, isMap := v.(map[string]any)
	if !isMap {
		p.errorf(n, "params: expected a mapping")
		return nil
	}
	return m
}

func (p *fileParser) tags(n *yaml.Node) []string {
	n = p.resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "tags: expected a list")
		return nil
	}
	var tags []string
	for _, item := range n.Content {
		v, ok := p.str(item, "tags")
		if !ok {
			continue
		}
		item = p.resolve(item)
		switch {
		case !tagPattern.MatchString(v):
			p.errorf(item, "tags: %q is neither an ATT&CK id (T1234, T1234.001) nor a lowercase tag", v)
		case slices.Contains(tags, v):
			p.errorf(item, "tags: duplicate tag %q", v)
		default:
			tags = append(tags, v)
		}
	}
	return tags
}

// toAny converts a YAML value to plain Go values: nil, bool, int64 (uint64
// beyond), float64, string (also for timestamps and binary, kept as
// written), []any and map[string]any.
func (p *fileParser) toAny(n *yaml.Node, depth int) (any, bool) {
	n = p.resolve(n)
	if !p.visit(n) {
		return nil, false
	}
	if depth > maxDepth {
		p.errorf(n, "value nested more than %d levels deep", maxDepth)
		return nil, false
	}
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, true
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				p.errorf(n, "%v", err)
				return nil, false
			}
			return b, true
		case "!!int":
			var i int64
			if err := n.Decode(&i); err == nil {
				return i, true
			}
			var u uint64
			if err := n.Decode(&u); err == nil {
				return u, true
			}
			p.errorf(n, "integer %s out of range", n.Value)
			return nil, false
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				p.errorf(n, "%v", err)
				return nil, false
			}
			return f, true
		case "!!str", "!!timestamp", "!!binary":
			return n.Value, true
		default:
			p.errorf(n, "unsupported YAML tag %s", n.Tag)
			return nil, false
		}
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, item := range n.Content {
			v, ok := p.toAny(item, depth+1)
			if !ok {
				return nil, false
			}
			s = append(s, v)
		}
		return s, true
	case yaml.MappingNode:
		pairs := p.mapping(n, depth)
		m := make(map[string]any, len(pairs))
		for _, kv := range pairs {
			v, ok := p.toAny(kv.v, depth+1)
			if !ok {
				return nil, false
			}
			m[kv.key] = v
		}
		return m, true
	default:
		p.errorf(n, "unsupported YAML value")
		return nil, false
	}
}

// mapping returns the keys of a mapping node in order, with merge keys
// (<<) expanded: explicit keys win over merged ones, and earlier merged
// mappings over later ones. Duplicate explicit keys are errors.
func (p *fileParser) mapping(n *yaml.Node, depth int) []pair {
	if depth > maxDepth {
		p.errorf(n, "mapping nested more than %d levels deep", maxDepth)
		return nil
	}
	var out, merged []pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !p.visit(k) {
			return nil
		}
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merged = append(merged, p.merge(v, depth)...)
			continue
		}
		k = p.resolve(k)
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "mapping keys must be strings")
			continue
		}
		if seen[k.Value] {
			p.errorf(k, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		out = append(out, pair{key: k.Value, k: k, v: v})
	}
	for _, kv := range merged {
		if !seen[kv.key] {
			seen[kv.key] = true
			out = append(out, kv)
		}
	}
	return out
}

func (p *fileParser) merge(v *yaml.Node, depth int) []pair {
	v = p.resolve(v)
	switch v.Kind {
	case yaml.MappingNode:
		return p.mapping(v, depth+1)
	case yaml.SequenceNode:
		var out []pair
		for _, m := range v.Content {
			m = p.resolve(m)
			if m.Kind != yaml.MappingNode {
				p.errorf(m, "merge (<<): expected a mapping")
				continue
			}
			out = append(out, p.mapping(m, depth+1)...)
		}
		return out
	default:
		p.errorf(v, "merge (<<): expected a mapping or a list of mappings")
		return nil
	}
}

// visit counts a node against the file's budget.
func (p *fileParser) visit(n *yaml.Node) bool {
	p.visits++
	if p.visits == maxNodeVisits {
		p.errorf(n, "the file expands to more than %d YAML values (aliases?)", maxNodeVisits)
	}
	return p.visits < maxNodeVisits
}

// resolve follows an alias to its anchored node.
func (p *fileParser) resolve(n *yaml.Node) *yaml.Node {
	for range 8 {
		if n.Kind != yaml.AliasNode || n.Alias == nil {
			break
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// str reads a scalar as a string; a null is the empty string.
func (p *fileParser) str(n *yaml.Node, field string) (string, bool) {
	n = p.resolve(n)
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, "%s: expected a string", field)
		return "", false
	}
	if n.Tag == "!!null" {
		return "", true
	}
	return n.Value, true
}

func (p *fileParser) boolean(n *yaml.Node, field string) (bool, bool) {
	n = p.resolve(n)
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		p.errorf(n, "%s: expected true or false", field)
		return false, false
	}
	return b, true
}

func (p *fileParser) timestamp(n *yaml.Node, field string) (time.Time, bool) {
	v, ok := p.str(n, field)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		p.errorf(p.resolve(n), "%s: %q is not an RFC 3339 time such as 2026-01-01T12:00:00Z", field, v)
		return time.Time{}, false
	}
	return t, true
}

func (p *fileParser) unknownKey(kv pair, where string, known []string) {
	p.errorf(kv.k, "unknown key %q in %s (known keys: %s)", kv.key, where, strings.Join(known, ", "))
}

func (p *fileParser) errorf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, &LoadError{File: p.file, Line: n.Line, Column: n.Column, Msg: fmt.Sprintf(format, args...)})
}

// yamlParserProblems are the messages of go.yaml.in/yaml/v3's parser (as
// opposed to its scanner). For these it reports the 0-based line of the
// enclosing construct (or none for the first line), where scanner errors
// carry a 1-based line.
var yamlParserProblems = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
	"found duplicate %TAG directive",
}

// yamlError turns a YAML syntax error into a LoadError with its 1-based
// line.
func (p *fileParser) yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLinePattern.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if slices.Contains(yamlParserProblems, msg) {
		line++
	}
	return &LoadError{File: p.file, Line: line, Msg: msg}
}

// exprPos maps a position inside the CEL source held by scalar node n (line
// 1-based, col 0-based, in runes) to a 1-based line and column in the file.
// Literal blocks (|) map exactly; folded blocks and multi-line flow scalars
// map exactly as long as they have no blank lines or escapes before the
// position.
func (p *fileParser) exprPos(n *yaml.Node, line, col int) (int, int) {
	exprLines := strings.Split(n.Value, "\n")
	if line < 1 || line > len(exprLines) {
		return n.Line, n.Column
	}
	off := col // rune offset in n.Value
	for _, l := range exprLines[:line-1] {
		off += utf8.RuneCountInString(l) + 1
	}

	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		indent := -1
		for ln := n.Line + 1; ln <= len(p.lines); ln++ {
			rs := []rune(p.lines[ln-1])
			blank := strings.TrimSpace(string(rs)) == ""
			if indent < 0 && !blank {
				indent = len(rs) - len([]rune(strings.TrimLeft(string(rs), " ")))
			}
			var content []rune
			if indent >= 0 && len(rs) > indent {
				content = rs[indent:]
			}
			if off <= len(content) {
				return ln, max(indent, 0) + off + 1
			}
			off -= len(content) + 1
		}
		return n.Line, n.Column
	}

	start := n.Column // 1-based column of the first character
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		start++
	}
	for ln := n.Line; ln <= len(p.lines); ln++ {
		rs := []rune(p.lines[ln-1])
		first := start - 1
		if ln != n.Line {
			first = len(rs) - len([]rune(strings.TrimLeft(string(rs), " \t")))
		}
		if first > len(rs) {
			break
		}
		content := []rune(strings.TrimRight(string(rs[first:]), " \t"))
		if off <= len(content) {
			return ln, first + off + 1
		}
		off -= len(content) + 1
	}
	return n.Line, n.Column
}
