package detect

import (
	"testing"
)

// A param goes into an expression as a literal only while it has at most
// maxParamLiteral values: every params.NAME gets a copy of it.
func TestInlineParamsBounded(t *testing.T) {
	envs, err := newEnvs()
	if err != nil {
		t.Fatal(err)
	}
	a, iss := envs.device.Compile(`device.hostname in params.names && params.names.size() > 1`)
	if iss.Err() != nil {
		t.Fatal(iss.Err())
	}
	list := func(n int) []any {
		l := make([]any, n)
		for i := range l {
			l[i] = "h"
		}
		return l
	}
	for _, c := range []struct {
		n       int
		inlined bool
	}{{1, true}, {maxParamLiteral - 1, true}, {maxParamLiteral, false}, {100_000, false}} {
		if got := inlineParams(envs.device, a, map[string]any{"names": list(c.n)}) != a; got != c.inlined {
			t.Errorf("a list of %d: inlined %v, want %v", c.n, got, c.inlined)
		}
	}
	nested := map[string]any{"names": []any{list(maxParamLiteral / 2), list(maxParamLiteral / 2)}}
	if inlineParams(envs.device, a, nested) != a {
		t.Error("two lists of half the bound each (and the list holding them) were inlined")
	}
}
