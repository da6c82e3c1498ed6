package store

import (
	"encoding/json"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
)

// diffSectionsByMap is diffSections as a comparison of decoded maps, the
// definition the one pass over sorted lists must keep.
func diffSectionsByMap(from string, cur map[string]string) sectionChanges {
	var prev map[string]string
	json.Unmarshal([]byte(from), &prev)
	var changed []string
	for name, d := range cur {
		if name != "users" && prev[name] != d {
			changed = append(changed, name)
		}
	}
	for name := range prev {
		if _, ok := cur[name]; !ok && name != "users" {
			changed = append(changed, name)
		}
	}
	sort.Strings(changed)
	return sectionChanges{from: from, changed: strings.Join(changed, ","), users: prev["users"] != cur["users"],
		serials: slices.ContainsFunc([]string{"usb", "displays", "peripherals"}, func(name string) bool { return prev[name] != cur[name] }),
		keys: slices.ContainsFunc([]string{"usb", "displays", "peripherals", "network", "remote_access"},
			func(name string) bool { return prev[name] != cur[name] })}
}

// randomSections draws section digests from a few names and digests,
// some of them needing JSON escapes or not valid UTF-8.
func randomSections(rnd *rand.Rand) map[string]string {
	names := []string{"usb", "displays", "peripherals", "network", "sessions", "users", "identity", "remote_access", "a<b", `q"uote`, "é"}
	digests := []string{"", "0123456789abcdef", "fedcba9876543210", "0123456789abcdee", `back\slash`, "\xff", "x&y"}
	m := map[string]string{}
	for _, name := range names {
		if rnd.IntN(3) > 0 {
			plain := rnd.IntN(8) > 0
			d := digests[rnd.IntN(4)]
			if !plain {
				d = digests[rnd.IntN(len(digests))]
			}
			m[name] = d
		}
	}
	return m
}

// TestSections: the section digests are written as encoding/json writes
// the map, read back as encoding/json decodes them (also when written
// otherwise: spaces, unsorted or escaped keys, not JSON at all), and
// diffSections finds what comparing the decoded maps finds.
func TestSections(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	stored := []string{"", "{}", "null", "not json", `{"usb":"0123456789abcdef"}`, `{ "usb" : "0123456789abcdef" }`,
		`{"usb":"0123456789abcdef","displays":"0123456789abcdef"}`, `{"us\u0062":"0123456789abcdef"}`, `{"usb":1}`,
		`{"usb":"0123456789abcdef","usb":"fedcba9876543210"}`, `{"usb":"0123456789abcdef"`, `{"usb":"0123456789abcdef"}x`}
	for range 2000 {
		m := randomSections(rnd)
		want, _ := json.Marshal(m)
		l := sortedSections(m)
		if got := l.json(); got != string(want) {
			t.Fatalf("%v written as %s, want %s", m, got, want)
		}
		stored = append(stored, string(want))
	}
	for i, from := range stored {
		var m map[string]string
		json.Unmarshal([]byte(from), &m)
		got := map[string]string{}
		var buf [4]section
		l := parseSections(from, buf[:0])
		for j, s := range l {
			if j > 0 && l[j-1].name >= s.name {
				t.Fatalf("%s read unsorted: %v", from, l)
			}
			got[s.name] = s.digest
		}
		if !maps.Equal(got, m) {
			t.Fatalf("%s read as %v, want %v", from, got, m)
		}
		cur := randomSections(rnd)
		if i%5 == 0 {
			cur = maps.Clone(m) // unchanged
		}
		r := &IngestReport{Sections: cur, sorted: sortedSections(cur)}
		if got, want := *diffSections(from, r), diffSectionsByMap(from, cur); got != want {
			t.Fatalf("diffSections(%s, %v) = %+v, want %+v", from, cur, got, want)
		}
	}
}

// TestDeviceUsers: the user names seen are the distinct user name keys of
// the keyboard layouts and current sessions, sorted, and their key is the
// first 8 bytes of the SHA-256 of the names one a line, in hex, as the
// stored "users" section digests were taken.
func TestDeviceUsers(t *testing.T) {
	sn := &agentv1.HostSnapshot{
		Locale:   &agentv1.Locale{KeyboardLayouts: []*agentv1.KeyboardLayout{{User: `CORP\JDoe`}, {User: "jdoe"}, {User: " "}, {User: "alice@corp.example"}}},
		Sessions: &agentv1.Sessions{Current: []*agentv1.LoginSession{{User: "bob"}, {User: "Alice"}, {User: ""}}},
	}
	users, key := deviceUsers(sn)
	if !slices.Equal(users, []string{"alice", "bob", "jdoe"}) || key != "446299d48f0c27a3" {
		t.Fatalf("users %q, key %s; want [alice bob jdoe], 446299d48f0c27a3", users, key)
	}
	if users, key := deviceUsers(&agentv1.HostSnapshot{}); users != nil || key != "e3b0c44298fc1c14" {
		t.Fatalf("no users: %q, key %s; want none, e3b0c44298fc1c14 (the SHA-256 of nothing)", users, key)
	}
}
