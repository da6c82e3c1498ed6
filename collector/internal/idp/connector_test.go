package idp

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// fakeAPI is the bookkeeping a loopback provider API keeps: its pages of
// records (from the provider's published example document), the faults
// it injects, and what it saw.
type fakeAPI struct {
	t       *testing.T
	mu      sync.Mutex
	records []json.RawMessage
	pageLen int
	// faults are answered to the requests with these numbers (1-based)
	// instead of the page: "429" (rate limited until 2 s later) or "500".
	faults   map[int]string
	requests int
	// resetAt is when the rate-limit window opened by a 429 ends; early
	// counts requests that came before it.
	resetAt time.Time
	early   int
	queries []string
}

func newFakeAPI(t *testing.T, format string, faults map[int]string) *fakeAPI {
	recs := docRecords(t, format)
	return &fakeAPI{t: t, records: recs, pageLen: 2, faults: faults}
}

// docRecords reads the records of the provider's example document.
func docRecords(t *testing.T, format string) []json.RawMessage {
	data, err := os.ReadFile(filepath.Join("testdata", format+".json"))
	if err != nil {
		t.Fatal(err)
	}
	key := map[string]string{Okta: "", Entra: "value", Google: "items"}[format]
	recs, err := records(data, key)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// next counts a request and returns the fault to answer it with, if any.
func (f *fakeAPI) next(r *http.Request) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	f.queries = append(f.queries, r.URL.RawQuery)
	if !f.resetAt.IsZero() && time.Now().Before(f.resetAt) {
		f.early++
	}
	return f.faults[f.requests]
}

// fault writes an injected fault; true when one was written.
func (f *fakeAPI) fault(w http.ResponseWriter, kind string, retryAfter bool) bool {
	switch kind {
	case "429":
		f.mu.Lock()
		f.resetAt = time.Now().Add(2 * time.Second)
		reset := f.resetAt
		f.mu.Unlock()
		// Okta's headers; Graph and Google send Retry-After.
		w.Header().Set("X-Rate-Limit-Limit", "60")
		w.Header().Set("X-Rate-Limit-Remaining", "0")
		w.Header().Set("X-Rate-Limit-Reset", strconv.FormatInt(reset.Unix()+1, 10))
		if retryAfter {
			w.Header().Set("Retry-After", "3")
		}
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"errorCode": "E0000047", "errorSummary": "API call exceeded rate limit due to too many requests."}`)
		return true
	case "500":
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error": "internal"}`)
		return true
	}
	return false
}

// page returns the records from offset on, one page's worth.
func (f *fakeAPI) page(offset int) ([]json.RawMessage, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if offset > len(f.records) {
		offset = len(f.records)
	}
	end := min(offset+f.pageLen, len(f.records))
	return f.records[offset:end], end
}

func (f *fakeAPI) add(rec string) {
	f.mu.Lock()
	f.records = append(f.records, json.RawMessage(rec))
	f.mu.Unlock()
}

func (f *fakeAPI) stats() (requests, early int, queries []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests, f.early, append([]string(nil), f.queries...)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// newPuller builds a connector from a connectors file's content.
func newPuller(t *testing.T, st *store.Store, yaml string, env map[string]string) *Puller {
	t.Helper()
	conns, err := ParseConfig([]byte(yaml), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPuller(t.Context(), conns[0], st, &Enricher{}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func storedEvents(t *testing.T, st *store.Store, emails ...string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, e := range emails {
		ss, err := st.PersonSignins(t.Context(), e, time.Time{}, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			out[s.EventID]++
		}
	}
	return out
}

func connector(t *testing.T, st *store.Store, name string) store.IdPConnector {
	t.Helper()
	cs, err := st.IdPConnectors(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no connector %s in %+v", name, cs)
	return store.IdPConnector{}
}

// TestOktaConnector: the System Log's polling protocol (since, then the
// Link rel="next" cursor, which stays valid after the last page), the API
// token, a 429 whose X-Rate-Limit-Reset is honoured and a 500 in the
// middle; the cursor kept in the database lets a new connector (a
// restart) go on where the first stopped, storing each event once.
func TestOktaConnector(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		api := newFakeAPI(t, Okta, map[int]string{2: "429", 4: "500"})
		var srv *httptest.Server
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/api/v1/logs" || r.Header.Get("Authorization") != "SSWS okta-token" {
				http.Error(w, `{"errorCode": "E0000011", "errorSummary": "Invalid token provided"}`, http.StatusUnauthorized)
				return
			}
			if api.fault(w, api.next(r), false) {
				return
			}
			q := r.URL.Query()
			offset := 0
			if a := q.Get("after"); a != "" {
				offset, _ = strconv.Atoi(a)
			} else if q.Get("since") == "" || q.Get("sortOrder") != "ASCENDING" {
				http.Error(w, "want since and sortOrder=ASCENDING", http.StatusBadRequest)
				return
			}
			recs, end := api.page(offset)
			w.Header().Set("X-Rate-Limit-Remaining", "59")
			w.Header().Add("Link", fmt.Sprintf(`<%s%s>; rel="self"`, srv.URL, r.URL.RequestURI()))
			w.Header().Add("Link", fmt.Sprintf(`<%s/api/v1/logs?after=%d&limit=2>; rel="next"`, srv.URL, end))
			writeJSON(w, recs)
		}))
		defer srv.Close()
		st := storetest.Open(t, dsn)
		cfg := "connectors:\n  - {name: okta-prod, provider: okta, base_url: " + srv.URL + ", token_env: OKTA_TOKEN, poll_interval: 1m}\n"
		env := map[string]string{"OKTA_TOKEN": "okta-token"}

		if err := newPuller(t, st, cfg, env).Poll(t.Context()); err != nil {
			t.Fatal(err)
		}
		got := storedEvents(t, st, "john.doe@example.com", "ana@example.com")
		if len(got) != 3 || got["dc9fd3c0-598c-11ef-8478-2b7584bf8d5a"] != 1 {
			t.Fatalf("stored %v, want the example's 3 sign-ins once each", got)
		}
		requests, early, _ := api.stats()
		if early != 0 {
			t.Errorf("%d requests came before the rate-limit reset", early)
		}
		c := connector(t, st, "okta-prod")
		if !strings.Contains(c.Cursor, "after=7") || c.Events != 3 || c.LastEventAt.IsZero() || c.LagSeconds < 0 || c.Provider != "okta" {
			t.Errorf("connector state %+v", c)
		}

		// A restart: a new connector on the same database, one more event
		// at the provider.
		api.add(`{"uuid": "restart-1", "published": "2017-10-01T08:00:00Z", "eventType": "user.session.start",
			"actor": {"type": "User", "alternateId": "ana@example.com"}, "client": {"ipAddress": "192.0.2.9"}, "outcome": {"result": "SUCCESS"}}`)
		if err := newPuller(t, st, cfg, env).Poll(t.Context()); err != nil {
			t.Fatal(err)
		}
		got = storedEvents(t, st, "john.doe@example.com", "ana@example.com")
		if len(got) != 4 || got["restart-1"] != 1 {
			t.Errorf("after the restart: %v", got)
		}
		requests2, _, queries := api.stats()
		if q := queries[requests]; !strings.HasPrefix(q, "after=7") {
			t.Errorf("the restarted connector asked %q, want the stored cursor after=7", q)
		}
		if requests2-requests != 2 { // the new page, then the empty one
			t.Errorf("restart made %d requests", requests2-requests)
		}
		if c := connector(t, st, "okta-prod"); c.Events != 4 || c.LastError != "" {
			t.Errorf("connector state %+v", c)
		}
	})
}

// TestOktaConnectorRecordsErrors: a provider that keeps failing leaves
// the error in the connector's state and the cursor where it was.
func TestOktaConnectorRecordsErrors(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"errorCode": "E0000006", "errorSummary": "You do not have permission to perform the requested action"}`, http.StatusForbidden)
		}))
		defer srv.Close()
		st := storetest.Open(t, dsn)
		p := newPuller(t, st, "connectors:\n  - {name: okta, provider: okta, base_url: "+srv.URL+", token_env: T}\n", map[string]string{"T": "x"})
		if err := p.Poll(t.Context()); err == nil {
			t.Fatal("Poll: no error")
		}
		c := connector(t, st, "okta")
		if !strings.Contains(c.LastError, "403") || !strings.Contains(c.LastError, "permission") || c.Cursor != "" || c.LastErrorAt.IsZero() {
			t.Errorf("state %+v", c)
		}
	})
}

// TestEntraConnector: OAuth2 client credentials against a loopback token
// endpoint, Graph's @odata.nextLink paging, a 429 with Retry-After and a
// 500 in the middle; the watermark cursor advances once the last page is
// stored, and the next poll asks from it (less the overlap).
func TestEntraConnector(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		api := newFakeAPI(t, Entra, map[int]string{2: "429", 3: "500"})
		tokens := 0
		var srv *httptest.Server
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/tenant-1/oauth2/v2.0/token":
				r.ParseForm()
				id, secret, ok := r.BasicAuth()
				if !ok {
					id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
				}
				if r.PostForm.Get("grant_type") != "client_credentials" || id != "app-1" || secret != "s3cret" ||
					r.PostForm.Get("scope") != "http://"+r.Host+"/.default" {
					http.Error(w, `{"error": "invalid_client"}`, http.StatusUnauthorized)
					return
				}
				tokens++
				writeJSON(w, map[string]any{"token_type": "Bearer", "expires_in": 3599, "access_token": "graph-token"})
				return
			case "/v1.0/auditLogs/signIns":
			default:
				http.NotFound(w, r)
				return
			}
			if r.Header.Get("Authorization") != "Bearer graph-token" {
				http.Error(w, `{"error": {"code": "InvalidAuthenticationToken"}}`, http.StatusUnauthorized)
				return
			}
			if api.fault(w, api.next(r), true) {
				return
			}
			q := r.URL.Query()
			offset := 0
			if s := q.Get("$skiptoken"); s != "" {
				offset, _ = strconv.Atoi(s)
			} else if !strings.HasPrefix(q.Get("$filter"), "createdDateTime ge ") {
				http.Error(w, "want $filter", http.StatusBadRequest)
				return
			}
			recs, end := api.page(offset)
			page := map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns", "value": recs}
			if end < len(api.records) {
				page["@odata.nextLink"] = fmt.Sprintf("%s/v1.0/auditLogs/signIns?$top=2&$skiptoken=%d", srv.URL, end)
			}
			writeJSON(w, page)
		}))
		defer srv.Close()
		st := storetest.Open(t, dsn)
		cfg := "connectors:\n  - name: entra\n    provider: entra\n    base_url: " + srv.URL + "\n    tenant_id: tenant-1\n    client_id: app-1\n" +
			"    client_secret_env: GRAPH_SECRET\n    token_url: " + srv.URL + "/tenant-1/oauth2/v2.0/token\n"
		env := map[string]string{"GRAPH_SECRET": "s3cret"}
		if err := newPuller(t, st, cfg, env).Poll(t.Context()); err != nil {
			t.Fatal(err)
		}
		got := storedEvents(t, st, "testaccount1@contoso.com", "testaccount2@contoso.com", "testaccount3@contoso.com")
		if len(got) != 3 || got["66ea54eb-6301-4ee5-be62-ff5a759b0100"] != 1 {
			t.Fatalf("stored %v, want the example's 3 sign-ins", got)
		}
		if _, early, _ := api.stats(); early != 0 {
			t.Errorf("%d requests came before Retry-After", early)
		}
		c := connector(t, st, "entra")
		if c.Cursor != "2020-03-13T21:00:00Z" || c.Events != 3 {
			t.Errorf("connector state %+v", c)
		}
		// The next poll starts from the watermark less the overlap.
		requests, _, _ := api.stats()
		if err := newPuller(t, st, cfg, env).Poll(t.Context()); err != nil {
			t.Fatal(err)
		}
		_, _, queries := api.stats()
		if q := queries[requests]; !strings.Contains(q, "createdDateTime+ge+2020-03-13T20%3A45%3A00Z") {
			t.Errorf("second poll asked %q", q)
		}
		if got := storedEvents(t, st, "testaccount1@contoso.com", "testaccount2@contoso.com", "testaccount3@contoso.com"); len(got) != 3 {
			t.Errorf("after a second poll: %v", got)
		}
		if tokens == 0 {
			t.Error("no token was requested")
		}
	})
}

// TestGoogleConnector: a service-account JWT grant signed with the key
// in the credentials file and checked by the loopback token endpoint, the
// Reports API's pageToken paging, a 429 and a 500 in the middle.
func TestGoogleConnector(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		api := newFakeAPI(t, Google, map[int]string{2: "500", 3: "429"})
		api.pageLen = 1
		var srv *httptest.Server
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/token":
				r.ParseForm()
				if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
					http.Error(w, `{"error": "unsupported_grant_type"}`, http.StatusBadRequest)
					return
				}
				if err := checkJWT(r.PostForm.Get("assertion"), &key.PublicKey, srv.URL+"/token"); err != nil {
					t.Errorf("assertion: %v", err)
					http.Error(w, `{"error": "invalid_grant"}`, http.StatusBadRequest)
					return
				}
				writeJSON(w, map[string]any{"access_token": "google-token", "token_type": "Bearer", "expires_in": 3599})
				return
			case "/admin/reports/v1/activity/users/all/applications/login":
			default:
				http.NotFound(w, r)
				return
			}
			if r.Header.Get("Authorization") != "Bearer google-token" {
				http.Error(w, `{"error": {"code": 401}}`, http.StatusUnauthorized)
				return
			}
			if api.fault(w, api.next(r), true) {
				return
			}
			q := r.URL.Query()
			if q.Get("startTime") == "" {
				http.Error(w, "want startTime", http.StatusBadRequest)
				return
			}
			offset, _ := strconv.Atoi(q.Get("pageToken"))
			recs, end := api.page(offset)
			page := map[string]any{"kind": "admin#reports#activities", "items": recs}
			if end < len(api.records) {
				page["nextPageToken"] = strconv.Itoa(end)
			}
			writeJSON(w, page)
		}))
		defer srv.Close()
		dir := t.TempDir()
		pemKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(key))})
		cred, _ := json.Marshal(map[string]string{"type": "service_account", "project_id": "p", "private_key_id": "k1",
			"private_key": string(pemKey), "client_email": "bonafide@p.iam.gserviceaccount.com", "client_id": "1",
			"token_uri": srv.URL + "/token"})
		credFile := filepath.Join(dir, "sa.json")
		os.WriteFile(credFile, cred, 0o600)
		st := storetest.Open(t, dsn)
		cfg := "connectors:\n  - {name: workspace, provider: google, base_url: " + srv.URL + ", credentials_file: " + credFile +
			", subject: admin@example.com}\n"
		if err := newPuller(t, st, cfg, nil).Poll(t.Context()); err != nil {
			t.Fatal(err)
		}
		got := storedEvents(t, st, "liz@example.com")
		if len(got) != 2 || got["-3218452147789945617/login_success"] != 1 {
			t.Fatalf("stored %v, want the example's 2 sign-ins", got)
		}
		if _, early, _ := api.stats(); early != 0 {
			t.Errorf("%d requests came before Retry-After", early)
		}
		if c := connector(t, st, "workspace"); c.Cursor != "2024-01-15T14:20:00Z" || c.Events != 2 || c.LastError != "" {
			t.Errorf("connector state %+v", c)
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// checkJWT verifies an RS256 JWT-bearer assertion as Google's token
// endpoint does: the signature, and the claims of a service account
// acting for an administrator with the Reports scope.
func checkJWT(assertion string, pub *rsa.PublicKey, aud string) error {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return fmt.Errorf("not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return err
	}
	var c struct {
		Iss, Sub, Scope, Aud string
		Exp, Iat             int64
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return err
	}
	if c.Iss != "bonafide@p.iam.gserviceaccount.com" || c.Sub != "admin@example.com" || c.Scope != GoogleScope || c.Aud != aud || c.Exp <= c.Iat {
		return fmt.Errorf("claims %+v", c)
	}
	return nil
}

// Connector files are outside input: every problem is named.
func TestParseConfigRefuses(t *testing.T) {
	env := func(k string) string {
		if k == "SET" {
			return "x"
		}
		return ""
	}
	for _, tc := range []struct{ yaml, want string }{
		{"connectors:\n  - {name: Bad Name, provider: okta, base_url: https://o.example, token_env: SET}\n", "name"},
		{"connectors:\n  - {name: a, provider: ldap, token_env: SET}\n", "provider"},
		{"connectors:\n  - {name: a, provider: okta, token_env: SET}\n", "base_url"},
		{"connectors:\n  - {name: a, provider: okta, base_url: ftp://o.example, token_env: SET}\n", "base_url"},
		{"connectors:\n  - {name: a, provider: okta, base_url: https://u:p@o.example, token_env: SET}\n", "base_url"},
		{"connectors:\n  - {name: a, provider: okta, base_url: https://o.example, token_env: UNSET}\n", "UNSET"},
		{"connectors:\n  - {name: a, provider: okta, base_url: https://o.example, token_env: SET, token_file: /x}\n", "exactly one"},
		{"connectors:\n  - {name: a, provider: okta, base_url: https://o.example, token_env: SET, poll_interval: 1s}\n", "poll_interval"},
		{"connectors:\n  - {name: a, provider: entra, client_secret_env: SET}\n", "tenant_id"},
		{"connectors:\n  - {name: a, provider: google, credentials_env: SET}\n", "subject"},
		{"connectors:\n  - {name: a, provider: okta, base_url: https://o.example, token_env: SET, colour: red}\n", "colour"},
		{"connectors:\n  - {name: a, provider: okta, base_url: https://o.example, token_env: SET}\n  - {name: a, provider: okta, base_url: https://o.example, token_env: SET}\n", "duplicate"},
	} {
		if _, err := ParseConfig([]byte(tc.yaml), env); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %q", tc.yaml, err, tc.want)
		}
	}
	c, err := ParseConfig([]byte("connectors:\n  - {name: graph, provider: entra, tenant_id: t, client_id: c, client_secret_env: SET}\n"), env)
	if err != nil || c[0].base.String() != "https://graph.microsoft.com" || c[0].PollInterval != 5*time.Minute {
		t.Errorf("defaults: %+v, %v", c, err)
	}
}

// A next link to another host is refused: the token goes only to the
// configured API.
func TestNextLinkOtherHostRefused(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", `<https://evil.example/api/v1/logs?after=1>; rel="next"`)
			writeJSON(w, []any{})
		}))
		defer srv.Close()
		st := storetest.Open(t, dsn)
		p := newPuller(t, st, "connectors:\n  - {name: okta, provider: okta, base_url: "+srv.URL+", token_env: T}\n", map[string]string{"T": "x"})
		if err := p.Poll(context.Background()); err == nil || !strings.Contains(err.Error(), "not on") {
			t.Errorf("Poll: %v", err)
		}
	})
}
