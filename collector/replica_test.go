package main

import (
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

func TestSettingsDiff(t *testing.T) {
	mine := map[string]string{"heartbeat_interval": "5m0s", "rules": "abc"}
	same := store.Replica{Name: "b", Settings: map[string]string{"heartbeat_interval": "5m0s", "rules": "abc"}}
	if d := settingsDiff("a", mine, []store.Replica{{Name: "a", Settings: nil}, same}); d != "" {
		t.Errorf("agreeing replicas (and this one's own row): %q", d)
	}
	other := store.Replica{Name: "c", Settings: map[string]string{"heartbeat_interval": "4m0s"}}
	want := "c: heartbeat_interval=4m0s (here 5m0s); c: rules=unset (here abc)"
	if d := settingsDiff("a", mine, []store.Replica{same, other}); d != want {
		t.Errorf("diff %q, want %q", d, want)
	}
}
