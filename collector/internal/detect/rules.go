// Package detect is bonafide's policy engine: facts and a time go in,
// findings come out. It has no clock, no store and no network of its own.
//
// Rules are data. They live in YAML files (see Load for the format), each
// rule a CEL condition over the facts plus an optional CEL evidence map,
// and each rule carries its own test cases, which Engine.Test runs through
// the same evaluator the collector uses.
//
// In CEL, `device` is a DeviceFacts with the snake_case names of its cel
// tags; time.Time fields are timestamps and time.Duration fields durations.
// A zero time.Time reads as timestamp(0), the Unix epoch, like an unset
// protobuf Timestamp: test whether a time is set with int(t) > 0.
// `snapshot` is the bonafide.agent.v1.HostSnapshot message with its proto
// field names, `person` a PersonFacts (the bound person's identity-provider
// sign-ins and laptop positions), `now` the evaluation time and `params`
// the rule's params. Besides CEL's standard and extension libraries,
// snapshot rules may call snapshot.sessions.sourceAddresses(types), the
// distinct source addresses of the sessions of those types (see
// sourceAddresses).
package detect

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// Scope says which facts a rule sees and when the collector evaluates it.
type Scope string

const (
	// ScopeDevice rules see `device`, `now` and `params`. The collector
	// evaluates them on every report and on its silent-agent sweeps.
	ScopeDevice Scope = "device"
	// ScopeSnapshot rules also see `snapshot`, the agent's latest
	// HostSnapshot. The collector evaluates them when a snapshot arrives.
	ScopeSnapshot Scope = "snapshot"
)

// Severities a rule may declare, lowest first.
var severities = []string{"low", "medium", "high", "critical"}

// Rule is the metadata and source of one loaded rule.
type Rule struct {
	ID          string
	Title       string
	Severity    string // low, medium, high or critical
	Description string
	Tags        []string
	Enabled     bool
	// AutoResolve resolves the rule's open alert on a device when a report
	// is evaluated and the rule no longer fires there.
	AutoResolve bool
	// BeforeFirstReport rules are also evaluated on a device that enrolled
	// and never reported (Facts.NeverReported), where the collector knows
	// nothing but the enrollment: rules about the agent's silence. Every
	// other rule needs a report and is skipped there.
	BeforeFirstReport bool
	Scope             Scope
	// File and Line locate the rule: the path inside the policies FS and
	// the line of its `id` key.
	File string
	Line int
	// Condition and Evidence are the CEL sources; Evidence is empty when
	// the rule has none.
	Condition string
	Evidence  string
	// Params as written in the file: string, int64, uint64, float64, bool,
	// nil, []any and map[string]any values.
	Params map[string]any
}

// Category is the rule's file name without directory and extension
// ("remote_access" for rules/remote_access.yaml): rules are grouped by
// file, and the fleet correlation counts alerts of different categories
// as independent co-signals.
func (r *Rule) Category() string {
	return strings.TrimSuffix(path.Base(r.File), path.Ext(r.File))
}

// Finding is one rule that fired.
type Finding struct {
	RuleID      string
	Title       string
	Severity    string
	Description string
	Tags        []string
	// Category is the rule's category (Rule.Category).
	Category string
	// Evidence holds JSON-marshalable values only; see exportValue for how
	// CEL values are converted.
	Evidence map[string]any
}

// Engine holds a compiled rule set. It is immutable after Load and safe for
// concurrent use.
type Engine struct {
	rules   []*compiledRule           // sorted by id
	byScope map[Scope][]*compiledRule // enabled rules only, sorted by id
	// reportRules are the enabled device rules then the enabled
	// snapshot rules, as EvaluateReport runs them.
	reportRules []*compiledRule
	// autoResolve are the ids of the enabled auto-resolving rules by
	// scope, sorted (see AutoResolve).
	autoResolve map[Scope][]string
	digest      string
	// sanctioned is the allowlist (allowlist/sanctioned.yaml), nil without one.
	sanctioned *Sanctioned
	// sources are the loaded files' contents by path (see Source).
	sources map[string][]byte

	adapter       types.Adapter
	emptyDevice   ref.Val
	emptyPerson   ref.Val
	emptySnapshot ref.Val
}

// compiledRule is a Rule with its programs and test cases.
type compiledRule struct {
	Rule
	cond   compiled
	evid   compiled // evid.prg is nil when the rule has no evidence expression
	params ref.Val
	tests  []testCase
	// idColumn is the column of the id value, for duplicate-id errors.
	idColumn int
}

// LoadError is one problem found while loading a rule file. Line and
// Column are 1-based; zero when unknown.
type LoadError struct {
	File   string
	Line   int
	Column int
	Msg    string
}

func (e *LoadError) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	default:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
}

// Load reads every *.yaml and *.yml file under fsys (recursively, in
// lexical order), except those under a top-level catalog/ directory (data
// catalogs, not rules) and hidden files and directories (names starting
// with "."). Each file has the form
//
//	rules:
//	  - id: agent_silent              # required, ^[a-z][a-z0-9_]{1,63}$, unique
//	    title: Agent stopped reporting  # required
//	    severity: medium              # required: low|medium|high|critical
//	    description: ...              # required; {{params.NAME}} shows a param's value
//	    tags: [T1562.001]             # ATT&CK ids or lowercase tags
//	    enabled: true                 # default true
//	    scope: device                 # device|snapshot, default snapshot
//	    params: {intervals: 3}        # optional map, CEL `params`
//	    condition: <CEL bool>         # required
//	    evidence: <CEL map>           # optional, default {}
//	    tests:                        # facts in, finding expected
//	      - name: silent for an hour
//	        facts: {now: ..., device: {...}, person: {...}, snapshot: {...}}
//	        fires: true               # required
//	        evidence: {...}           # optional expected subset
//
// Decoding is strict: unknown or duplicate keys are errors. YAML anchors,
// aliases and merge keys (<<) are allowed. Every error carries the file,
// line and, where known, column, including CEL errors, which are mapped
// back into the YAML source. All errors of all files are returned together
// (errors.Join of *LoadError), and no Engine is returned then.
func Load(fsys fs.FS) (*Engine, error) {
	envs, err := newEnvs()
	if err != nil {
		return nil, err
	}
	var (
		errs       []error
		rules      []*compiledRule
		sanctioned *Sanctioned
		sources    = map[string][]byte{}
		h          = sha256.New()
	)
	walkErr := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, &LoadError{File: p, Msg: err.Error()})
			if d != nil && d.IsDir() && p != "." {
				return fs.SkipDir
			}
			return nil
		}
		name := d.Name()
		if p != "." && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p == "catalog" || p == "allowlist" {
				return fs.SkipDir
			}
			return nil
		}
		if ext := path.Ext(name); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			errs = append(errs, &LoadError{File: p, Msg: err.Error()})
			return nil
		}
		// Each file contributes its path and content, length-prefixed, so
		// the digest changes when a file is renamed, edited or removed.
		writeDigest(h, p)
		writeDigest(h, string(data))
		sources[p] = data
		fileRules, fileErrs := parseFile(p, data, envs)
		rules = append(rules, fileRules...)
		errs = append(errs, fileErrs...)
		return nil
	})
	if walkErr != nil {
		errs = append(errs, walkErr)
	}
	if data, err := fs.ReadFile(fsys, SanctionedFile); err == nil {
		writeDigest(h, SanctionedFile)
		writeDigest(h, string(data))
		sources[SanctionedFile] = data
		if sanctioned, err = parseSanctioned(SanctionedFile, data); err != nil {
			errs = append(errs, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, &LoadError{File: SanctionedFile, Msg: err.Error()})
	}

	// Rule ids are unique across files. Rules arrive in walk order, so the
	// first definition is the one in the lexically first file.
	seen := make(map[string]*compiledRule, len(rules))
	for _, r := range rules {
		if first, dup := seen[r.ID]; dup {
			errs = append(errs, &LoadError{File: r.File, Line: r.Line, Column: r.idColumn,
				Msg: fmt.Sprintf("id: duplicate rule id %q (first defined at %s:%d)", r.ID, first.File, first.Line)})
			continue
		}
		seen[r.ID] = r
	}
	if len(errs) > 0 {
		// Report in reading order: by file, line, column.
		slices.SortStableFunc(errs, func(a, b error) int {
			var la, lb LoadError // others sort first, as if at "":0:0
			if e, ok := a.(*LoadError); ok {
				la = *e
			}
			if e, ok := b.(*LoadError); ok {
				lb = *e
			}
			return cmp.Or(strings.Compare(la.File, lb.File), cmp.Compare(la.Line, lb.Line), cmp.Compare(la.Column, lb.Column))
		})
		return nil, errors.Join(errs...)
	}

	slices.SortFunc(rules, func(a, b *compiledRule) int { return strings.Compare(a.ID, b.ID) })
	e := &Engine{
		rules:      rules,
		byScope:    make(map[Scope][]*compiledRule, 2),
		digest:     hex.EncodeToString(h.Sum(nil)),
		sanctioned: sanctioned,
		sources:    sources,
		adapter:    envs.adapter,
	}
	e.emptyDevice = envs.adapter.NativeToValue(&DeviceFacts{})
	e.emptyPerson = envs.adapter.NativeToValue(&PersonFacts{})
	e.emptySnapshot = envs.adapter.NativeToValue(emptySnapshot())
	for _, r := range rules {
		if r.Enabled {
			e.byScope[r.Scope] = append(e.byScope[r.Scope], r)
		}
	}
	e.reportRules = slices.Concat(e.byScope[ScopeDevice], e.byScope[ScopeSnapshot])
	e.autoResolve = make(map[Scope][]string, 2)
	for _, r := range rules {
		if r.Enabled && r.AutoResolve {
			e.autoResolve[r.Scope] = append(e.autoResolve[r.Scope], r.ID)
		}
	}
	return e, nil
}

func writeDigest(h interface{ Write([]byte) (int, error) }, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	h.Write([]byte(s))
}

// Rules returns the metadata of every loaded rule, enabled or not, sorted
// by id. The result is a copy the caller may modify.
func (e *Engine) Rules() []Rule {
	out := make([]Rule, len(e.rules))
	for i, r := range e.rules {
		out[i] = r.Rule
		out[i].Tags = slices.Clone(r.Tags)
		out[i].Params = cloneValue(r.Params).(map[string]any)
	}
	return out
}

// AutoResolve lists the enabled rules of scope that resolve their alerts
// when the condition clears.
// The result is a copy the caller may modify (the lists are made at Load:
// the collector asks on every report).
func (e *Engine) AutoResolve(scope Scope) []string {
	return slices.Clone(e.autoResolve[scope])
}

// Digest is the hex SHA-256 of the loaded rule files (paths and contents,
// in load order). It identifies the active rule set: equal sources give
// equal digests.
func (e *Engine) Digest() string { return e.digest }

// Source returns the content of a file the set was loaded from (a rule
// file, or the allowlist), by its path in the policies FS; false for any
// other path. The caller must not modify it.
func (e *Engine) Source(file string) ([]byte, bool) {
	b, ok := e.sources[file]
	return b, ok
}

// Files lists the paths of the files the set was loaded from, sorted.
func (e *Engine) Files() []string { return slices.Sorted(maps.Keys(e.sources)) }

// cloneValue deep-copies a value made of maps, slices and scalars.
func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = cloneValue(x)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, x := range v {
			s[i] = cloneValue(x)
		}
		return s
	default:
		return v
	}
}
