package ui

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/outputs"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// TestOutputsPage: every user sees the outputs and their state; only an
// admin sends a test event, with the session's CSRF token; what a
// receiver answered and a refused edit of the file are shown as text.
func TestOutputsPage(t *testing.T) {
	ctx := t.Context()
	st := storetest.Open(t, filepath.Join(t.TempDir(), "bonafide.db"))
	for _, u := range [][2]string{{"ada", accounts.RoleAdmin}, {"vic", accounts.RoleViewer}} {
		if _, err := accounts.New(st).CreateUser(ctx, u[0], u[1], "correct horse battery", "test"); err != nil {
			t.Fatal(err)
		}
	}
	var up atomic.Bool
	var tests atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, `<script>alert("receiver")</script>`, http.StatusInternalServerError)
			return
		}
		if r.Header.Get("X-Bonafide-Event") == "test" {
			tests.Add(1)
		}
	}))
	defer recv.Close()
	file := filepath.Join(t.TempDir(), "outputs.yaml")
	good := "outputs:\n  - {name: soc-hook, type: webhook, url: '" + recv.URL + "/hook', secret: s, min_severity: high}\n"
	os.WriteFile(file, []byte(good), 0o600)
	outs := outputs.New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), outputs.Options{})
	if _, err := outs.Reload(file, time.Now()); err != nil {
		t.Fatal(err)
	}
	h, err := New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{Outputs: outs})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	f := &fixture{srv: srv, st: st}

	viewer := f.client(t)
	f.signIn(t, viewer, "vic")
	code, body, hdr := get(t, viewer, srv.URL+"/ui/outputs")
	if code != 200 || !strings.Contains(body, "soc-hook") || !strings.Contains(body, "high and above") || strings.Contains(body, "Send test event") ||
		!strings.Contains(body, "<code>"+recv.URL+"</code>") || strings.Contains(body, "/hook") || !strings.Contains(hdr.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("viewer's page %d:\n%s", code, body)
	}
	csrf := csrfRe.FindStringSubmatch(body)[1]
	post := func(c *http.Client, form url.Values) *http.Response {
		t.Helper()
		resp, err := c.PostForm(srv.URL+"/ui/outputs/soc-hook/test", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post(viewer, url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a viewer's test event: %s", resp.Status)
	}

	admin := f.client(t)
	f.signIn(t, admin, "ada")
	_, body, _ = get(t, admin, srv.URL+"/ui/outputs")
	if !strings.Contains(body, "Send test event") {
		t.Fatalf("admin's page lacks the test button:\n%s", body)
	}
	csrf = csrfRe.FindStringSubmatch(body)[1]
	if resp := post(admin, url.Values{"csrf": {"forged"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a forged form: %s", resp.Status)
	}
	resp := post(admin, url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("test event: %s", resp.Status)
	}
	_, body, _ = get(t, admin, srv.URL+resp.Header.Get("Location"))
	if !strings.Contains(body, "Test event to soc-hook failed") || !strings.Contains(body, "&lt;script&gt;") || strings.Contains(body, `<script>alert("receiver")`) {
		t.Fatalf("failed test event:\n%s", body)
	}
	up.Store(true)
	resp = post(admin, url.Values{"csrf": {csrf}})
	if _, body, _ = get(t, admin, srv.URL+resp.Header.Get("Location")); !strings.Contains(body, "delivered to soc-hook") || tests.Load() != 1 {
		t.Fatalf("test event:\n%s", body)
	}

	// A refused edit is shown; the outputs stay.
	os.WriteFile(file, []byte(strings.Replace(good, "webhook", "<b>webhook</b>", 1)), 0o600)
	if _, err := outs.Reload(file, time.Now()); err == nil {
		t.Fatal("a broken edit loaded")
	}
	_, body, _ = get(t, viewer, srv.URL+"/ui/outputs")
	if !strings.Contains(body, "The last edit of the outputs file was refused") || !strings.Contains(body, "&lt;b&gt;webhook&lt;/b&gt;") || !strings.Contains(body, "soc-hook") {
		t.Fatalf("refused edit:\n%s", body)
	}
}
