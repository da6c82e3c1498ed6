package store

import "testing"

// TestClusterViewNetworkClass: a cluster's network class is its members'
// most common one, the first by name among equals, with "" (no class
// known) counted like any other; map order must not choose it.
func TestClusterViewNetworkClass(t *testing.T) {
	for _, tc := range []struct {
		classes []string
		want    string
	}{
		{[]string{"", "", "residential"}, ""},
		{[]string{"residential", "", "residential"}, "residential"},
		{[]string{"residential", "office", "", "hosting"}, ""},
		{[]string{"residential", "office", "office", "residential"}, "office"},
	} {
		for range 50 { // map iteration order differs from run to run
			r := &clusterRead{id: "c-1", serial: make([]string, len(tc.classes)), alerts: make([][]memberAlert, len(tc.classes))}
			for i, c := range tc.classes {
				r.members = append(r.members, ClusterMember{DeviceID: string(rune('a' + i)), NetworkClass: c})
			}
			if got := r.view().NetworkClass; got != tc.want {
				t.Fatalf("classes %q: network class %q, want %q", tc.classes, got, tc.want)
			}
		}
	}
}
