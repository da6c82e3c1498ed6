package ui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// OIDC configures single sign-on with an OpenID Connect provider: the
// authorization code flow with PKCE (S256), state and nonce.
type OIDC struct {
	// Issuer is the provider's issuer URL, which serves
	// /.well-known/openid-configuration.
	Issuer string
	// ClientID and ClientSecret are the UI's credentials at the provider.
	ClientID, ClientSecret string
	// RedirectURL is where the provider sends users back:
	// https://HOST/ui/oidc/callback, registered at the provider.
	RedirectURL string
	// Scopes requested (default: openid, email, profile).
	Scopes []string
	// Claim is the ID token claim whose values Roles maps (default
	// "groups"); a string or a list of strings.
	Claim string
	// Roles maps a value of Claim to a role (viewer, analyst, admin). A
	// user with several mapped values gets the highest of their roles.
	Roles map[string]string
	// Name names the provider on the sign-in page (default "single sign-on").
	Name string
}

const (
	oidcCookie = "bonafide_oidc"
	// oidcFlowTTL is how long a sign-in may stay at the provider.
	oidcFlowTTL = 10 * time.Minute
	// Caps on claims taken from ID tokens.
	maxSubject     = 255
	maxEmail       = 254
	maxClaimValue  = 256
	maxClaimValues = 1000
)

// sso is the relying party. The provider's discovery document is fetched
// on the first sign-in (and again after a failure), so that the UI, and
// its local users, work while the provider is unreachable.
type sso struct {
	cfg OIDC

	mu       sync.Mutex
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newSSO(cfg OIDC) *sso {
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	if !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	}
	if cfg.Claim == "" {
		cfg.Claim = "groups"
	}
	if cfg.Name == "" {
		cfg.Name = "single sign-on"
	}
	return &sso{cfg: cfg}
}

func (s *sso) discover(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.oauth == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		p, err := oidc.NewProvider(ctx, s.cfg.Issuer)
		if err != nil {
			return nil, nil, fmt.Errorf("oidc discovery %s: %w", s.cfg.Issuer, err)
		}
		s.verifier = p.Verifier(&oidc.Config{ClientID: s.cfg.ClientID})
		s.oauth = &oauth2.Config{ClientID: s.cfg.ClientID, ClientSecret: s.cfg.ClientSecret, RedirectURL: s.cfg.RedirectURL,
			Endpoint: p.Endpoint(), Scopes: s.cfg.Scopes}
	}
	return s.oauth, s.verifier, nil
}

// flow is what the browser keeps between the redirect to the provider and
// the callback, in an HttpOnly cookie scoped to /ui/oidc/: the state, the
// nonce, the PKCE verifier and where to go afterwards.
type flow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"next"`
}

func (s *Server) oidcLogin(w http.ResponseWriter, r *http.Request) {
	conf, _, err := s.sso.discover(r.Context())
	if err != nil {
		s.log.Error("ui sign-in", "err", err)
		s.fail(w, r, http.StatusBadGateway, "The identity provider could not be reached; try again later or sign in with a local account.")
		return
	}
	f := flow{State: token(), Nonce: token(), Verifier: oauth2.GenerateVerifier(), Next: safeNext(r.URL.Query().Get("next"))}
	b, _ := json.Marshal(f)
	s.setFlowCookie(w, base64.RawURLEncoding.EncodeToString(b), int(oidcFlowTTL.Seconds()))
	http.Redirect(w, r, conf.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusSeeOther)
}

// setFlowCookie is SameSite=Lax: the provider's redirect back is a
// cross-site navigation, on which Strict cookies are not sent.
func (s *Server) setFlowCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: value, Path: "/ui/oidc/", HttpOnly: true, Secure: s.opts.SecureCookies,
		SameSite: http.SameSiteLaxMode, MaxAge: maxAge})
}

func (s *Server) readFlow(r *http.Request) (flow, bool) {
	var f flow
	c, err := r.Cookie(oidcCookie)
	if err != nil || len(c.Value) > 4096 {
		return f, false
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || json.Unmarshal(b, &f) != nil || f.State == "" || f.Nonce == "" || f.Verifier == "" {
		return f, false
	}
	return f, true
}

// oidcRefusal is the page of a sign-in the provider vouched for but no
// mapped group allows.
type oidcRefusal struct {
	Identity, Issuer, Claim string
	Values                  []string
	More                    int
	Overage                 bool
}

func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) {
	refuse := func(status int, msg string, logArgs ...any) {
		s.log.Warn("ui sign-in refused", append([]any{"via", "oidc", "reason", msg}, logArgs...)...)
		s.fail(w, r, status, msg+" Start again from the sign-in page.")
	}
	f, ok := s.readFlow(r)
	s.setFlowCookie(w, "", -1) // one use
	q := r.URL.Query()
	switch {
	case !ok:
		refuse(http.StatusBadRequest, "This sign-in was not started here or took too long.")
		return
	case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1:
		refuse(http.StatusBadRequest, "The sign-in's state does not match the one this browser started.")
		return
	case q.Get("error") != "":
		refuse(http.StatusUnauthorized, "The identity provider did not sign you in: "+capString(q.Get("error")+" "+q.Get("error_description"), 300))
		return
	}
	conf, verifier, err := s.sso.discover(r.Context())
	if err != nil {
		s.log.Error("ui sign-in", "err", err)
		s.fail(w, r, http.StatusBadGateway, "The identity provider could not be reached; try again later or sign in with a local account.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		refuse(http.StatusUnauthorized, "The identity provider did not accept the sign-in's code.", "err", err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		refuse(http.StatusUnauthorized, "The identity provider sent no ID token.")
		return
	}
	idt, err := verifier.Verify(ctx, raw) // signature (JWKS), issuer, audience, expiry
	if err != nil {
		refuse(http.StatusUnauthorized, "The ID token could not be verified.", "err", err)
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		refuse(http.StatusUnauthorized, "The ID token's nonce does not match this sign-in.")
		return
	}
	var claims map[string]json.RawMessage
	if err := idt.Claims(&claims); err != nil {
		refuse(http.StatusUnauthorized, "The ID token's claims could not be read.", "err", err)
		return
	}
	identity, ok := oidcIdentity(idt.Subject, claims)
	if !ok {
		refuse(http.StatusUnauthorized, "The ID token has no usable subject.")
		return
	}
	values := claimValues(claims[s.sso.cfg.Claim])
	role := ""
	for _, v := range values {
		if mapped := s.sso.cfg.Roles[v]; roleRank[mapped] > roleRank[role] {
			role = mapped
		}
	}
	actor := accounts.OIDCPrefix + identity
	if role == "" {
		s.log.Warn("ui sign-in refused", "via", "oidc", "user", actor, "reason", "no mapped group", "claim", s.sso.cfg.Claim)
		d := oidcRefusal{Identity: identity, Issuer: s.sso.cfg.Issuer, Claim: s.sso.cfg.Claim, Values: values[:min(len(values), 20)],
			More: max(len(values)-20, 0), Overage: hasOverage(claims, s.sso.cfg.Claim)}
		s.render(w, r, http.StatusForbidden, "oidc_refused", "Not allowed", d)
		return
	}
	u, err := s.accounts.SignInOIDC(r.Context(), identity, role, map[string]any{"issuer": s.sso.cfg.Issuer, "subject": idt.Subject, "claim": s.sso.cfg.Claim})
	if errors.Is(err, store.ErrNotFound) {
		refuse(http.StatusForbidden, "Your account is disabled in bonafide.")
		return
	}
	if err != nil {
		s.log.Error("ui sign-in", "err", err)
		s.fail(w, r, http.StatusInternalServerError, "Something went wrong; the error is in the collector's log.")
		return
	}
	if !s.startSession(w, r, u) {
		return
	}
	// The session cookie is SameSite=Strict, and this response ends a
	// navigation that started at the provider, another site: a redirect
	// would carry on that navigation without the cookie. A page of ours
	// that moves on by itself starts a same-site one.
	next := safeNext(f.Next)
	w.Header().Set("Refresh", "0; url="+next)
	s.render(w, r, http.StatusOK, "oidc_done", "Signed in", next)
}

// oidcIdentity names the user: the e-mail address unless the provider
// says it is not verified, else the subject. Both are capped and must be
// printable.
func oidcIdentity(sub string, claims map[string]json.RawMessage) (string, bool) {
	var email string
	var verified any
	json.Unmarshal(claims["email"], &email)
	json.Unmarshal(claims["email_verified"], &verified)
	email = strings.ToLower(email)
	if email != "" && len(email) <= maxEmail && strings.Contains(email, "@") && printable(email) && verified != false && verified != "false" {
		return email, true
	}
	if sub == "" || len(sub) > maxSubject || !printable(sub) {
		return "", false
	}
	return sub, true
}

// printable reports whether s is only visible ASCII (no spaces or controls).
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// claimValues reads a claim that is a string or a list of strings,
// keeping at most maxClaimValues values of at most maxClaimValue bytes.
func claimValues(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		raw, _ = json.Marshal([]string{one})
	}
	var list []any
	json.Unmarshal(raw, &list)
	var out []string
	for _, v := range list {
		if s, ok := v.(string); ok && s != "" && len(s) <= maxClaimValue && len(out) < maxClaimValues {
			out = append(out, s)
		}
	}
	return out
}

// hasOverage reports a claim the provider left out for its size and
// points to instead (_claim_names: Entra ID does this for users in more
// than 200 groups).
func hasOverage(claims map[string]json.RawMessage, claim string) bool {
	var names map[string]any
	json.Unmarshal(claims["_claim_names"], &names)
	_, ok := names[claim]
	return ok
}

func capString(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}

func token() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
