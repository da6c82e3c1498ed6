package ui

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// BenchmarkAlertQueue renders queue pages over 100,000 devices with a
// million alerts (goal: ≤ 100 ms a page), on SQLite and, when
// BONAFIDE_TEST_POSTGRES is set, on PostgreSQL. Each sub-benchmark is one
// kind of page an analyst opens.
func BenchmarkAlertQueue(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			dsn := filepath.Join(b.TempDir(), "bonafide.db")
			if engine == "postgres" {
				dsn = storetest.PostgresDSN(b)
			}
			st := storetest.Open(b, dsn)
			now := time.Now()
			storetest.SeedQueue(b, dsn, 100_000, 10, now)
			h, cookie := signedIn(b, st)
			// A cursor deep into the open queue: the 200th page.
			deep := store.AlertFilter{Status: store.StatusOpen, Limit: 1000}
			for range 10 {
				page, err := st.ListAlerts(b.Context(), deep)
				if err != nil || len(page) == 0 {
					b.Fatalf("deep cursor: %v", err)
				}
				deep.Cursor = store.AlertCursor(store.SortNewest, page[len(page)-1])
			}
			for _, p := range []struct{ name, query string }{
				{"open_newest", ""}, // the grouped view: cases, then the alerts no case holds
				{"open_every_alert", "view=all"},
				{"open_page_200", "cursor=" + deep.Cursor},
				{"open_by_severity", "sort=severity"},
				{"open_by_last_seen", "sort=last_seen"},
				{"all_critical", "status=all&severity=critical"},
				{"all_by_severity", "status=all&sort=severity"},
				{"search_host", "q=host-4242"},
				{"search_rule", "status=all&q=rule_7"},
				{"search_broad", "q=host-"},
			} {
				b.Run(p.name, func(b *testing.B) {
					for b.Loop() {
						req := httptest.NewRequest(http.MethodGet, "/ui/alerts?"+p.query, nil)
						req.AddCookie(cookie)
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, req)
						if rec.Code != http.StatusOK {
							b.Fatalf("%s: %d %s", p.query, rec.Code, rec.Body)
						}
					}
				})
			}
		})
	}
}

// signedIn is the UI over st with a signed-in analyst's session cookie.
func signedIn(b *testing.B, st *store.Store) (http.Handler, *http.Cookie) {
	u, err := accounts.New(st).CreateUser(b.Context(), "bench", accounts.RoleAnalyst, "correct horse battery", "test")
	if err != nil {
		b.Fatal(err)
	}
	token, _, err := accounts.New(st).CreateSession(b.Context(), u.ID, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	h, err := New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{})
	if err != nil {
		b.Fatal(err)
	}
	return h, &http.Cookie{Name: "bonafide_session", Value: token}
}
