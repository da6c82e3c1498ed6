// Package ui is the collector's web UI for SOC analysts: server-rendered
// pages (html/template, which escapes every value for its context, so
// strings that came from agents render as text) with a vendored htmx, on
// the collector's HTTP port under /ui/.
//
// Sign-in is with local users (`bonafide-collector user create`) or by
// OpenID Connect single sign-on (oidc.go); either way the session lives
// server-side, its token in an HttpOnly, SameSite=Strict cookie. Every
// form carries the session's CSRF token (the sign-in form, before any
// session, a token its own cookie repeats), and every action checks the
// user's role on the server. Read-only pages work without JavaScript.
package ui

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/outputs"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

const (
	cookieName = "bonafide_session"
	sessionTTL = 12 * time.Hour
	// loginCookie carries the sign-in form's CSRF token (double submit):
	// the form echoes it, and a POST whose form and cookie disagree is
	// refused. Another site can make a browser post the form but can
	// neither read nor set the cookie (HttpOnly, SameSite=Strict).
	loginCookie = "bonafide_login"
	loginTTL    = time.Hour
)

// Options are what the UI needs besides the store.
type Options struct {
	// SecureCookies marks the session cookie Secure (set when users reach
	// the collector over TLS, e.g. behind a TLS-terminating proxy).
	SecureCookies bool
	// Live is the active rule set, for the policies page (nil: the page
	// says the rules are unknown).
	Live *detect.Live
	// Collector is the gRPC address agents dial (host:port) and
	// CAFingerprint the CA certificate's SHA-256 in hex, for the install
	// commands on the enrollment page.
	Collector     string
	CAFingerprint string
	// AgentDir holds the agent binaries the enrollment page builds
	// pre-configured packages from (see packaging.AgentBinary).
	AgentDir string
	// Version is the collector's version, which names the agent packages
	// in the install commands (packaging.FileName).
	Version string
	// OIDC, when set, offers single sign-on besides the local users.
	OIDC *OIDC
	// Outputs are the alert outputs, for the outputs page (nil: none).
	Outputs *outputs.Manager
}

// Server serves the UI.
type Server struct {
	store    *store.Store
	accounts *accounts.Store
	log      *slog.Logger
	mux      *http.ServeMux
	pages    map[string]*template.Template
	opts     Options
	sso      *sso // nil without OIDC
	// signIns throttles failed sign-ins per user name and address.
	signIns *throttle
}

// New builds the UI handler.
func New(st *store.Store, log *slog.Logger, opts Options) (*Server, error) {
	s := &Server{store: st, accounts: accounts.New(st), log: log, mux: http.NewServeMux(), pages: map[string]*template.Template{}, opts: opts, signIns: newThrottle()}
	funcs := template.FuncMap{
		"since":    since,
		"sevclass": func(sev string) string { return "sev-" + sev },
		"query":    func(v url.Values) template.URL { return template.URL(v.Encode()) },
		"list":     func(s ...string) []string { return s },
		"join":     strings.Join,
	}
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", n, err)
		}
		s.pages[name] = t
	}
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/ui/static/", http.FileServerFS(static))
	s.mux.Handle("GET /ui/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // files only, no directory listing
			return
		}
		files.ServeHTTP(w, r)
	}))
	s.mux.HandleFunc("GET /ui/login", s.loginPage)
	s.mux.HandleFunc("POST /ui/login", s.login)
	if opts.OIDC != nil {
		s.sso = newSSO(*opts.OIDC)
		s.mux.HandleFunc("GET /ui/oidc/login", s.oidcLogin)
		s.mux.HandleFunc("GET /ui/oidc/callback", s.oidcCallback)
	}
	s.handle("POST /ui/logout", accounts.RoleViewer, s.logout)
	s.handle("GET /ui/{$}", accounts.RoleViewer, s.overview)
	s.handle("GET /ui/alerts", accounts.RoleViewer, s.alerts)
	s.handle("POST /ui/alerts", accounts.RoleAnalyst, s.bulk)
	s.handle("GET /ui/alerts/{id}", accounts.RoleViewer, s.alert)
	s.handle("POST /ui/alerts/{id}", accounts.RoleAnalyst, s.triage)
	s.handle("POST /ui/alerts/{id}/suppress", accounts.RoleAnalyst, s.suppress)
	s.handle("GET /ui/farms", accounts.RoleViewer, s.farms)
	s.handle("GET /ui/farms/{id}", accounts.RoleViewer, s.farm)
	s.handle("GET /ui/policies", accounts.RoleViewer, s.policies)
	s.handle("GET /ui/policies/source", accounts.RoleViewer, s.policySource)
	s.handle("POST /ui/policies/rules/{id}", accounts.RoleAdmin, s.setRule)
	s.handle("POST /ui/policies/dry-run", accounts.RoleAnalyst, s.policyDryRun)
	s.handle("GET /ui/outputs", accounts.RoleViewer, s.outputsView)
	s.handle("GET /ui/idp", accounts.RoleViewer, s.idpView)
	s.handle("POST /ui/outputs/{name}/test", accounts.RoleAdmin, s.testOutput)
	s.handle("GET /ui/enrollment", accounts.RoleViewer, s.enrollment)
	s.handle("POST /ui/enrollment", accounts.RoleAdmin, s.createSecret)
	s.handle("POST /ui/enrollment/{id}/revoke", accounts.RoleAdmin, s.revokeSecret)
	s.handle("POST /ui/enrollment/package", accounts.RoleAdmin, s.downloadPackage)
	s.handle("GET /ui/devices", accounts.RoleViewer, s.devices)
	s.handle("GET /ui/devices/{id}", accounts.RoleViewer, s.device)
	s.handle("GET /ui/people", accounts.RoleViewer, s.people)
	s.handle("GET /ui/people/{email}", accounts.RoleViewer, s.person)
	s.routeCases()
	return s, nil
}

// ServeHTTP adds the security headers to every response.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	s.mux.ServeHTTP(w, r)
}

var roleRank = map[string]int{accounts.RoleViewer: 1, accounts.RoleAnalyst: 2, accounts.RoleAdmin: 3}

type pageFunc func(w http.ResponseWriter, r *http.Request, sess accounts.Session) error

type sessionKey struct{}

// handle registers a page or action that needs a signed-in user with at
// least role min; a POST also needs the session's CSRF token.
func (s *Server) handle(pattern, min string, h pageFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.session(r)
		if err != nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			} else {
				s.fail(w, r, http.StatusUnauthorized, "Sign in first.")
			}
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			if err := r.ParseForm(); err != nil {
				s.fail(w, r, http.StatusBadRequest, "The form could not be read.")
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(sess.CSRF)) != 1 {
				s.fail(w, r, http.StatusForbidden, "The form expired or did not come from this site; reload the page and try again.")
				return
			}
		}
		if roleRank[sess.User.Role] < roleRank[min] {
			s.fail(w, r, http.StatusForbidden, "This needs the "+min+" role; you are "+sess.User.Role+".")
			return
		}
		if err := h(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, sess)), sess); err != nil {
			switch {
			case errors.Is(err, store.ErrNotFound):
				s.fail(w, r, http.StatusNotFound, "Not found.")
			case errors.Is(err, store.ErrInvalid):
				s.fail(w, r, http.StatusBadRequest, err.Error())
			case errors.Is(err, context.Canceled):
			default:
				s.log.Error("ui", "path", r.URL.Path, "err", err)
				s.fail(w, r, http.StatusInternalServerError, "Something went wrong; the error is in the collector's log.")
			}
		}
	})
}

func (s *Server) session(r *http.Request) (accounts.Session, error) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return accounts.Session{}, store.ErrNotFound
	}
	return s.accounts.SessionByToken(r.Context(), c.Value)
}

// page is what every template gets.
type page struct {
	Title   string
	User    *accounts.User
	CSRF    string
	Flash   string
	Error   string
	CanEdit bool // analyst or admin
	Data    any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) error {
	p := page{Title: title, Data: data, Flash: r.URL.Query().Get("done")}
	if sess, ok := r.Context().Value(sessionKey{}).(accounts.Session); ok {
		p.User, p.CSRF = &sess.User, sess.CSRF
		p.CanEdit = roleRank[sess.User.Role] >= roleRank[accounts.RoleAnalyst]
	}
	var b strings.Builder
	if err := s.pages[name].ExecuteTemplate(&b, "layout.html", p); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, err := w.Write([]byte(b.String()))
	return err
}

// fail shows an error page with the status.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if err := s.render(w, r, status, "error", http.StatusText(status), msg); err != nil {
		http.Error(w, msg, status)
	}
}

// loginData is the sign-in page's.
type loginData struct {
	Next, Error string
	SSO         string // the provider's name; empty without OIDC
	CSRF        string // the form's token, also in loginCookie
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.loginForm(w, r, http.StatusOK, safeNext(r.URL.Query().Get("next")), "")
}

// loginForm renders the sign-in form with status and errMsg, with the
// CSRF token of the request's loginCookie, or a new one set in it.
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request, status int, next, errMsg string) {
	d := loginData{Next: next, Error: errMsg}
	if s.sso != nil {
		d.SSO = s.sso.cfg.Name
	}
	if c, err := r.Cookie(loginCookie); err == nil && validLoginToken(c.Value) {
		d.CSRF = c.Value
	} else {
		d.CSRF = token()
	}
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: d.CSRF, Path: "/ui/login", HttpOnly: true, Secure: s.opts.SecureCookies,
		SameSite: http.SameSiteStrictMode, MaxAge: int(loginTTL.Seconds())})
	s.render(w, r, status, "login", "Sign in", d)
}

// validLoginToken reports whether v looks like a token that token made,
// so that a cookie planted with any other value is replaced.
func validLoginToken(v string) bool {
	if len(v) != 43 {
		return false
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	next := safeNext(r.PostFormValue("next"))
	// The form's token must be the one its cookie carries: a sign-in
	// posted from another site (login CSRF, which would sign the analyst
	// in as the attacker) is refused before anything else, and counts as
	// no failed sign-in.
	c, err := r.Cookie(loginCookie)
	if err != nil || !validLoginToken(c.Value) || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(c.Value)) != 1 {
		s.log.Warn("ui sign-in without its form's token", "ip", clientAddr(r))
		s.loginForm(w, r, http.StatusForbidden, next, "The sign-in form expired or did not come from this site; try again.")
		return
	}
	user := strings.ToLower(strings.TrimSpace(r.PostFormValue("username")))
	if len(user) > 256 {
		user = user[:256]
	}
	if !s.signIns.allow(user, r) {
		s.log.Warn("ui sign-in throttled", "user", user, "ip", clientAddr(r))
		s.loginForm(w, r, http.StatusTooManyRequests, next, "Too many failed sign-ins: wait a few minutes and try again.")
		return
	}
	u, err := s.accounts.Authenticate(r.Context(), r.PostFormValue("username"), r.PostFormValue("password"))
	if err != nil {
		if !errors.Is(err, accounts.ErrUnauthenticated) {
			s.log.Error("ui sign-in", "err", err)
		} else {
			s.signIns.fail(user, r)
			s.log.Warn("ui sign-in refused", "user", user, "ip", clientAddr(r))
		}
		s.loginForm(w, r, http.StatusUnauthorized, next, "Wrong user name or password.")
		return
	}
	// The token has served; the next sign-in form gets a new one.
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/ui/login", HttpOnly: true, Secure: s.opts.SecureCookies,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	s.signIns.succeed(user)
	if s.startSession(w, r, u) {
		http.Redirect(w, r, next, http.StatusSeeOther)
	}
}

// startSession opens a session for u and sets its cookie. On failure it
// answers the request itself and returns false.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u accounts.User) bool {
	token, _, err := s.accounts.CreateSession(r.Context(), u.ID, sessionTTL)
	if err != nil {
		s.log.Error("ui session", "err", err)
		http.Error(w, "could not sign in", http.StatusInternalServerError)
		return false
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: "/ui/", HttpOnly: true, Secure: s.opts.SecureCookies,
		SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL.Seconds())})
	s.log.Info("ui sign-in", "user", u.Username, "role", u.Role)
	return true
}

// safeNext keeps a post-sign-in redirect on this site's UI.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/ui/"
	}
	return next
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ accounts.Session) error {
	if c, err := r.Cookie(cookieName); err == nil {
		if err := s.accounts.DeleteSession(r.Context(), c.Value); err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/ui/", HttpOnly: true, Secure: s.opts.SecureCookies,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
	return nil
}

// actor names the signed-in user in the audit log: user:NAME for local
// users, oidc:NAME (their username) for those signed in by OIDC.
func actor(sess accounts.Session) string {
	if strings.HasPrefix(sess.User.Username, accounts.OIDCPrefix) {
		return sess.User.Username
	}
	return "user:" + sess.User.Username
}

func since(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}
