package ui

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// evidence is an alert's evidence laid out for people: a map becomes
// labelled fields, a list of records a table, a list of values a list, a
// value text. Nesting beyond that shows as compact JSON. The template
// escapes every part: evidence quotes what agents sent.
type evidence struct {
	Text   string
	Fields []evidenceField
	Items  []evidence
	Table  *evidenceTable
}

type evidenceField struct {
	Label string
	Value evidence
}

type evidenceTable struct {
	Columns []string
	Rows    [][]string
}

// maxEvidenceItems caps list and table lengths on the page.
const maxEvidenceItems = 200

func layoutEvidence(v any) evidence {
	switch v := v.(type) {
	case map[string]any:
		var e evidence
		side := sideBySide(v)
		if side != nil {
			e.Fields = append(e.Fields, evidenceField{Label: "sign-in and laptop", Value: evidence{Table: side}})
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if side != nil && (strings.HasPrefix(k, signinPrefix) || strings.HasPrefix(k, laptopPrefix)) {
				continue
			}
			e.Fields = append(e.Fields, evidenceField{Label: label(k), Value: layoutEvidence(v[k])})
		}
		if len(e.Fields) == 0 {
			e.Text = "none"
		}
		return e
	case []any:
		if len(v) == 0 {
			return evidence{Text: "none"}
		}
		if t := recordTable(v); t != nil {
			return evidence{Table: t}
		}
		var e evidence
		for _, x := range v[:min(len(v), maxEvidenceItems)] {
			e.Items = append(e.Items, evidence{Text: scalar(x)})
		}
		if len(v) > maxEvidenceItems {
			e.Items = append(e.Items, evidence{Text: fmt.Sprintf("… and %d more", len(v)-maxEvidenceItems)})
		}
		return e
	}
	return evidence{Text: scalar(v)}
}

// Evidence keys of the identity-provider rules that describe a sign-in
// and the laptop's position at that time (policies/rules/idp.yaml).
const (
	signinPrefix = "signin_"
	laptopPrefix = "laptop_"
)

// sideBySide lays out the signin_* and laptop_* keys of an evidence map as
// one table, the sign-in and the laptop in two columns, row by row (nil
// unless the map has both).
func sideBySide(v map[string]any) *evidenceTable {
	var attrs []string
	signin, laptop := false, false
	for k := range v {
		switch {
		case strings.HasPrefix(k, signinPrefix):
			signin = true
			attrs = append(attrs, strings.TrimPrefix(k, signinPrefix))
		case strings.HasPrefix(k, laptopPrefix):
			laptop = true
			attrs = append(attrs, strings.TrimPrefix(k, laptopPrefix))
		}
	}
	if !signin || !laptop {
		return nil
	}
	slices.Sort(attrs)
	t := &evidenceTable{Columns: []string{"", "sign-in", "laptop"}}
	for _, a := range slices.Compact(attrs) {
		row := []string{label(a), "", ""}
		if x, ok := v[signinPrefix+a]; ok {
			row[1] = scalar(x)
		}
		if x, ok := v[laptopPrefix+a]; ok {
			row[2] = scalar(x)
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// recordTable lays out a list of maps as a table (nil when some element
// is not a map).
func recordTable(v []any) *evidenceTable {
	cols := map[string]bool{}
	for _, x := range v {
		m, ok := x.(map[string]any)
		if !ok {
			return nil
		}
		for k := range m {
			cols[k] = true
		}
	}
	t := &evidenceTable{}
	keys := slices.Sorted(maps.Keys(cols))
	for _, k := range keys {
		t.Columns = append(t.Columns, label(k))
	}
	for _, x := range v[:min(len(v), maxEvidenceItems)] {
		m := x.(map[string]any)
		row := make([]string, len(keys))
		for i, k := range keys {
			if val, ok := m[k]; ok {
				row[i] = scalar(val)
			}
		}
		t.Rows = append(t.Rows, row)
	}
	if len(v) > maxEvidenceItems {
		t.Rows = append(t.Rows, []string{fmt.Sprintf("… and %d more", len(v)-maxEvidenceItems)})
	}
	return t
}

// label turns a JSON key into a heading: "egress_ip" → "egress ip".
func label(k string) string { return strings.ReplaceAll(k, "_", " ") }

// scalar shows one value: strings as they are, whole numbers without a
// fraction, anything nested as compact JSON.
func scalar(v any) string {
	switch v := v.(type) {
	case nil:
		return "—"
	case string:
		return v
	case bool:
		return map[bool]string{true: "yes", false: "no"}[v]
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
