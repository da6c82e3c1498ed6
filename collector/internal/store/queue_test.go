package store_test

import (
	"cmp"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// TestAlertQueue pages through a seeded queue in every order, with and
// without filters and a search match, and checks that the pages put
// together are exactly the matching alerts in that order: nothing skipped,
// nothing twice, whatever the page size.
func TestAlertQueue(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		st := storetest.Open(t, dsn)
		now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		storetest.SeedQueue(t, dsn, 40, 7, now)
		all, err := st.ListAlerts(t.Context(), store.AlertFilter{Limit: 1000})
		if err != nil || len(all) != 280 {
			t.Fatalf("seeded queue: %d alerts, %v", len(all), err)
		}
		rank := func(sev string) int { return slices.Index(store.Severities, sev) }
		orders := map[string]func(a, b store.Alert) int{
			store.SortNewest: func(a, b store.Alert) int { return cmp.Compare(b.ID, a.ID) },
			store.SortSeverity: func(a, b store.Alert) int {
				return cmp.Or(cmp.Compare(rank(a.Severity), rank(b.Severity)), cmp.Compare(b.ID, a.ID))
			},
			store.SortLastSeen: func(a, b store.Alert) int {
				return cmp.Or(b.LastSeen.Compare(a.LastSeen), cmp.Compare(b.ID, a.ID))
			},
		}
		match := &store.AlertMatch{DeviceIDs: []string{"dev-3", "dev-17"}, RuleIDs: []string{"rule_5"}}
		filters := []struct {
			name string
			f    store.AlertFilter
			keep func(store.Alert) bool
		}{
			{"all", store.AlertFilter{}, func(store.Alert) bool { return true }},
			{"open", store.AlertFilter{Status: store.StatusOpen}, func(a store.Alert) bool { return a.Status == store.StatusOpen }},
			{"high", store.AlertFilter{Severity: "high"}, func(a store.Alert) bool { return a.Severity == "high" }},
			{"match", store.AlertFilter{Match: match}, func(a store.Alert) bool {
				return slices.Contains(match.DeviceIDs, a.DeviceID) || slices.Contains(match.RuleIDs, a.RuleID)
			}},
			{"empty match", store.AlertFilter{Match: &store.AlertMatch{}}, func(store.Alert) bool { return false }},
		}
		for sort, order := range orders {
			for _, fl := range filters {
				var want []int64
				for _, a := range slices.SortedFunc(slices.Values(all), order) {
					if fl.keep(a) {
						want = append(want, a.ID)
					}
				}
				for _, size := range []int{1, 17, 1000} {
					f := fl.f
					f.Sort, f.Limit = sort, size
					var got []int64
					for range 300 {
						page, err := st.ListAlerts(t.Context(), f)
						if err != nil {
							t.Fatalf("%s %s: %v", sort, fl.name, err)
						}
						for _, a := range page {
							got = append(got, a.ID)
						}
						if len(page) < size {
							break
						}
						f.Cursor = store.AlertCursor(sort, page[len(page)-1])
					}
					if !slices.Equal(got, want) {
						t.Errorf("%s, %s, pages of %d: got %d alerts %v…, want %d %v…", sort, fl.name, size,
							len(got), got[:min(len(got), 8)], len(want), want[:min(len(want), 8)])
					}
				}
			}
		}
		for _, bad := range []store.AlertFilter{
			{Sort: "oldest"}, {Sort: store.SortSeverity, Cursor: "12"}, {Sort: store.SortSeverity, Cursor: "urgent.12"},
			{Sort: store.SortLastSeen, Cursor: "x.12"}, {Cursor: "high.12"}, {Cursor: "-4"},
		} {
			if _, err := st.ListAlerts(t.Context(), bad); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("%+v: err %v, want ErrInvalid", bad, err)
			}
		}
	})
}
