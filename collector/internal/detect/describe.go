package detect

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// paramRef is a reference to a rule's param in its description:
// {{params.NAME}}, or {{params.NAME.KEY}} inside a mapping.
var paramRef = regexp.MustCompile(`\{\{\s*params\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)\s*\}\}`)

// describe renders the description n of a rule with params: each
// {{params.NAME}} becomes the param's value as a person reads it (a list
// joined with ", "), so that an alert says "more than 3 times its
// reporting interval" and the text follows the params when they are
// edited. A reference to a param the rule does not have, or to a
// mapping, and any other {{…}} are load errors.
func (p *fileParser) describe(n *yaml.Node, desc string, params map[string]any) string {
	if n == nil {
		return desc
	}
	n = p.resolve(n)
	if rest := paramRef.ReplaceAllString(desc, ""); strings.Contains(rest, "{{") || strings.Contains(rest, "}}") {
		p.errorf(n, "description: only {{params.NAME}} is substituted")
	}
	return paramRef.ReplaceAllStringFunc(desc, func(ref string) string {
		name := paramRef.FindStringSubmatch(ref)[1]
		s, err := paramText(params, name)
		if err != nil {
			p.errorf(n, "description: {{params.%s}}: %v", name, err)
			return ref
		}
		return s
	})
}

// paramText is the value of the param at path (dot-separated) as text.
func paramText(params map[string]any, path string) (string, error) {
	var v any = params
	keys := strings.Split(path, ".")
	for i, key := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return "", fmt.Errorf("params.%s is not a mapping", strings.Join(keys[:i], "."))
		}
		if v, ok = m[key]; !ok {
			return "", fmt.Errorf("no such param (params here: %s)", cmp.Or(strings.Join(slices.Sorted(maps.Keys(m)), ", "), "none"))
		}
	}
	return valueText(v)
}

func valueText(v any) (string, error) {
	switch v := v.(type) {
	case map[string]any:
		return "", errors.New("is a mapping; name one of its keys")
	case nil:
		return "", errors.New("is null")
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			if _, ok := x.([]any); ok {
				return "", errors.New("is a list of lists")
			}
			s, err := valueText(x)
			if err != nil {
				return "", fmt.Errorf("item %d %w", i, err)
			}
			parts[i] = s
		}
		return strings.Join(parts, ", "), nil
	}
	return fmt.Sprint(v), nil
}
