package detect

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"cel.dev/cel-go/common/types"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// TestSourceAddresses: sessions.sourceAddresses(types) gives what the
// comprehension it stands for gives, in the same order, on sessions of
// every type, with and without (repeated, empty) addresses, and on a
// snapshot without sessions.
func TestSourceAddresses(t *testing.T) {
	envs, err := newEnvs()
	if err != nil {
		t.Fatal(err)
	}
	const kinds = `[bonafide.agent.v1.LoginSession.Type.TYPE_REMOTE_DESKTOP, bonafide.agent.v1.LoginSession.Type.TYPE_SSH, bonafide.agent.v1.LoginSession.Type.TYPE_SCREEN_SHARING]`
	compile := func(src string) func(*agentv1.HostSnapshot) string {
		eval := snapshotExpr(t, envs, src)
		return func(sn *agentv1.HostSnapshot) string { return fmt.Sprintf("%q", eval(sn)) }
	}
	walk := compile(`(snapshot.sessions.current.map(s, s.type in ` + kinds + `, s.source_address)
		+ snapshot.sessions.history.map(s, s.type in ` + kinds + `, s.source_address)).distinct()`)
	native := compile(`snapshot.sessions.sourceAddresses(` + kinds + `)`)

	addrs := []string{"", "10.0.0.1", "203.0.113.9", "::1", "10.0.0.1 "}
	session := func(r *rand.Rand) *agentv1.LoginSession {
		return &agentv1.LoginSession{User: "u", Type: agentv1.LoginSession_Type(r.IntN(6)), SourceAddress: addrs[r.IntN(len(addrs))]}
	}
	cases := []*agentv1.HostSnapshot{{}, {Sessions: &agentv1.Sessions{}}}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		s := &agentv1.Sessions{}
		for range r.IntN(6) {
			s.Current = append(s.Current, session(r))
		}
		for range r.IntN(12) {
			s.History = append(s.History, session(r))
		}
		cases = append(cases, &agentv1.HostSnapshot{Sessions: s})
	}
	nonEmpty := 0
	for i, sn := range cases {
		want, got := walk(sn), native(sn)
		if got != want {
			t.Fatalf("case %d (%v): sourceAddresses = %s, the comprehension gives %s", i, sn.GetSessions(), got, want)
		}
		if got != "[]" {
			nonEmpty++
		}
	}
	if nonEmpty < len(cases)/2 {
		t.Fatalf("only %d of %d cases have remote sessions", nonEmpty, len(cases))
	}
}

// snapshotExpr compiles a snapshot rule's expression for a test, and
// returns what it gives on a snapshot.
func snapshotExpr(t *testing.T, envs *envs, src string) func(*agentv1.HostSnapshot) any {
	t.Helper()
	prg, iss := compileExpr(envs.snapshot, `{"a": `+src+`}`, evidenceExpr, nil)
	if iss != nil {
		t.Fatalf("%s: %v", src, iss)
	}
	return func(sn *agentv1.HostSnapshot) any {
		act := &activation{snapshot: envs.adapter.NativeToValue(sn), params: types.NewStringInterfaceMap(envs.adapter, nil)}
		f, err := newFrame(t.Context(), act)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		out, err := run(t.Context(), prg, f, false)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		v, err := exportValue(out)
		if err != nil {
			t.Fatal(err)
		}
		return v.(map[string]any)["a"]
	}
}
