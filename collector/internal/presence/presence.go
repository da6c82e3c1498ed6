// Package presence owns presence checks: a hire enrols a passkey on the
// laptop's platform authenticator during a supervised onboarding; later an
// analyst asks for a check, the person answers it on that laptop with a
// WebAuthn assertion with user verification, and the laptop's agent,
// asked at its check-in, reports what it sees at that moment. The check
// passes only if the assertion verifies with a credential bound to that
// laptop, the browser's address is the laptop's egress address, and the
// agent saw no inbound remote session and no IP-KVM.
//
// The package runs the WebAuthn ceremonies (go-webauthn), serves the
// pages the person opens (see Handler), judges the agent's report and
// expires checks nobody answered. Storage is the store's; alerts go
// through the store's rules path so that they count as farm co-signals.
package presence

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/activity"
	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/proxyproto"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/presencestore"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Defaults of Config.
const (
	DefaultExpiry      = 10 * time.Minute
	DefaultDailyCap    = 3
	DefaultEnrolExpiry = 24 * time.Hour
	// ceremonyTimeout is how long a begun WebAuthn ceremony may take.
	ceremonyTimeout = 5 * time.Minute
	maxNote         = 500
)

// RuleID is the rule id of the alert a failed or expired check raises.
// Its category, presence, is not fleet nor agent, so it counts as a farm
// co-signal (see store.Cluster).
const RuleID = "presence_check_failed"

// Errors the API maps to its answers.
var (
	ErrNotEnrolled      = errors.New("this person has no enrolled presence credential: create an enrolment link first")
	ErrOutsideWorkHours = errors.New("outside the person's declared work hours")
	ErrNoDevice         = errors.New("the person has no device to check, or several: name the device_id")
	ErrDisabled         = errors.New("presence checks need the collector's --public-url (the WebAuthn origin)")
)

// Config configures presence checks.
type Config struct {
	// PublicURL is the web UI's base URL as people reach it
	// (--public-url): the WebAuthn origin; its host is the relying party
	// id. Empty disables presence checks.
	PublicURL string
	// Expiry is how long a person has to answer a check, and then how
	// long the agent has to report; DailyCap the checks per person in 24
	// hours (0: no cap); EnrolExpiry how long an enrolment link lives.
	Expiry      time.Duration
	DailyCap    int
	EnrolExpiry time.Duration
	// TrustedProxies may forward the browser's address.
	TrustedProxies proxyproto.Trusted
	// AutoRules are rule ids or path.Match patterns whose alerts ask for
	// a check automatically when they open or re-open (see AutoRequest).
	AutoRules []string
}

// Service runs presence checks.
type Service struct {
	st     *store.Store
	checks *presencestore.Store // st's checks, credentials and ceremonies
	rules  store.Evaluator
	log    *slog.Logger
	cfg    Config
	wa     *webauthn.WebAuthn // nil: disabled
	now    func() time.Time
}

// New makes the service; without cfg.PublicURL it serves nothing and
// refuses checks with ErrDisabled.
func New(st *store.Store, rules store.Evaluator, cfg Config, log *slog.Logger) (*Service, error) {
	if cfg.Expiry <= 0 {
		cfg.Expiry = DefaultExpiry
	}
	if cfg.EnrolExpiry <= 0 {
		cfg.EnrolExpiry = DefaultEnrolExpiry
	}
	for _, r := range cfg.AutoRules {
		if _, err := path.Match(r, ""); err != nil || r == "" || len(r) > 200 {
			return nil, fmt.Errorf("presence: automatic rule %q: not a rule id or pattern", r)
		}
	}
	s := &Service{st: st, checks: presencestore.New(st), rules: rules, log: log, cfg: cfg, now: time.Now}
	if cfg.PublicURL == "" {
		return s, nil
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || u.Hostname() == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("presence: public URL %q: want http(s)://host[:port]", cfg.PublicURL)
	}
	if _, err := netip.ParseAddr(u.Hostname()); err == nil {
		// WebAuthn binds a credential to a domain name; a UI reached by
		// address (single sign-on works so) cannot host presence checks.
		log.Warn("presence checks are off: --public-url names an IP address, and WebAuthn needs a domain name", "public_url", cfg.PublicURL)
		return s, nil
	}
	s.cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	s.wa, err = webauthn.New(&webauthn.Config{
		RPID:          u.Hostname(),
		RPDisplayName: "bonafide presence check",
		RPOrigins:     []string{u.Scheme + "://" + u.Host},
		// Attestation is kept where the authenticator gives one.
		AttestationPreference: protocol.PreferDirectAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			AuthenticatorAttachment: protocol.Platform,
			ResidentKey:             protocol.ResidentKeyRequirementPreferred,
			UserVerification:        protocol.VerificationRequired,
		},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: ceremonyTimeout},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: ceremonyTimeout},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("presence: webauthn: %w", err)
	}
	return s, nil
}

// Enabled reports whether presence checks are configured.
func (s *Service) Enabled() bool { return s.wa != nil }

// newToken is a link token and the hash the store keeps of it.
func newToken() (token, hash string) {
	var b [32]byte
	rand.Read(b[:])
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, tokenHash(token)
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// validToken says whether s has the form of a link token (so junk never
// reaches the database).
func validToken(s string) bool {
	if len(s) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

// device picks the device of a person to bind or check: deviceID when
// given (it must be one of theirs), else their only device.
func (s *Service) device(ctx context.Context, p store.Person, deviceID string) (string, error) {
	devs, err := s.st.PersonDevices(ctx, p)
	if err != nil {
		return "", err
	}
	for _, d := range devs {
		if deviceID == "" && len(devs) == 1 || d.ID == deviceID {
			return d.ID, nil
		}
	}
	return "", ErrNoDevice
}

// Enrolment is a created enrolment link.
type Enrolment struct {
	Link      string    `json:"link"`
	Person    string    `json:"person"`
	DeviceID  string    `json:"device_id"`
	ExpiresAt time.Time `json:"expires_at"`
	Roaming   bool      `json:"roaming"`
}

// CreateEnrolment makes a one-time enrolment link that binds a credential
// to the person and the device. The link is shown once, to whoever
// supervises the onboarding; only its hash is stored. roaming accepts a
// roaming authenticator (a FIDO2 key) for a laptop without a platform
// one.
func (s *Service) CreateEnrolment(ctx context.Context, email, deviceID string, roaming bool, actor string) (Enrolment, error) {
	p, err := s.st.GetPerson(ctx, email)
	if err != nil {
		return Enrolment{}, err
	}
	if !s.Enabled() {
		return Enrolment{}, ErrDisabled
	}
	dev, err := s.device(ctx, p, deviceID)
	if err != nil {
		return Enrolment{}, err
	}
	token, hash := newToken()
	now := s.now().UTC().Truncate(time.Microsecond)
	e := presencestore.Enrolment{Person: p.Email, DeviceID: dev, CreatedBy: actor, CreatedAt: now, ExpiresAt: now.Add(s.cfg.EnrolExpiry), Roaming: roaming}
	if err := s.checks.CreateEnrolment(ctx, hash, e); err != nil {
		return Enrolment{}, err
	}
	return Enrolment{Link: s.cfg.PublicURL + "/presence/enrol/" + token, Person: p.Email, DeviceID: dev, ExpiresAt: e.ExpiresAt, Roaming: roaming}, nil
}

// Check is a check as the API returns it when it is created: with its
// one-time link.
type Check struct {
	presencestore.Check
	Link string `json:"link"`
}

// Request starts a check of a person (on deviceID, else the device of
// their newest credential): only within their declared work hours, with
// an enrolled credential, under the daily cap. The person is notified
// through the outputs (the audit entry carries the link).
func (s *Service) Request(ctx context.Context, email, deviceID, note, actor string) (Check, error) {
	return s.request(ctx, email, deviceID, note, actor, "")
}

// request is Request; trigger names the alert opening of an automatic
// check ("" for an analyst's).
func (s *Service) request(ctx context.Context, email, deviceID, note, actor, trigger string) (Check, error) {
	if len(note) > maxNote {
		return Check{}, fmt.Errorf("note: at most %d bytes: %w", maxNote, store.ErrInvalid)
	}
	p, err := s.st.GetPerson(ctx, email)
	if err != nil {
		return Check{}, err
	}
	if !s.Enabled() {
		return Check{}, ErrDisabled
	}
	creds, err := s.checks.Credentials(ctx, p.Email)
	if err != nil {
		return Check{}, err
	}
	if len(creds) == 0 {
		return Check{}, ErrNotEnrolled
	}
	if deviceID == "" {
		deviceID = creds[len(creds)-1].DeviceID
	} else if !bound(creds, deviceID) {
		return Check{}, fmt.Errorf("device %s: %w", deviceID, ErrNotEnrolled)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	if !WithinWorkHours(p, now) {
		return Check{}, fmt.Errorf("%w (%s %s)", ErrOutsideWorkHours, p.WorkHours, p.Timezone)
	}
	token, hash := newToken()
	c := presencestore.Check{ID: uuid.NewString(), Person: p.Email, DeviceID: deviceID, RequestedBy: actor, Note: note,
		State: presencestore.Pending, Reasons: []string{}, CreatedAt: now, ExpiresAt: now.Add(s.cfg.Expiry), Trigger: trigger}
	link := s.cfg.PublicURL + "/presence/check/" + token
	detail := map[string]any{"person": p.Email, "name": p.Name, "device_id": deviceID, "expires_at": c.ExpiresAt, "link": link,
		"message": "Please open the link on your work laptop within " + s.cfg.Expiry.String() + " and confirm with your laptop's screen lock (fingerprint, face or PIN)."}
	if err := s.checks.CreateCheck(ctx, c, hash, s.cfg.DailyCap, detail); err != nil {
		return Check{}, err
	}
	c, err = s.checks.GetCheck(ctx, c.ID)
	return Check{Check: c, Link: link}, err
}

func bound(creds []presencestore.Credential, deviceID string) bool {
	for _, c := range creds {
		if c.DeviceID == deviceID {
			return true
		}
	}
	return false
}

// WithinWorkHours reports whether t falls in the person's declared work
// hours; a person without declared hours and zone has no restriction.
func WithinWorkHours(p store.Person, t time.Time) bool {
	if p.WorkHours == "" || p.Timezone == "" {
		return true
	}
	zone, err := time.LoadLocation(p.Timezone)
	if err != nil {
		return true // the HR import validated it; an unknown zone here restricts nothing
	}
	w, err := activity.ParseWorkHours(zone, p.WorkHours)
	if err != nil {
		return true
	}
	return w.Contains(t)
}

// AwaitingAgent names a check of the device whose assertion verified and
// that waits for the agent's report (ingest.Presence).
func (s *Service) AwaitingAgent(ctx context.Context, deviceID string) (string, error) {
	cs, err := s.checks.ChecksAwaitingAgent(ctx, deviceID, s.now())
	if err != nil || len(cs) == 0 {
		return "", err
	}
	return cs[0].ID, nil
}

// Notice is what the device's agent is told of a check that waits for
// the person's answer, so that it can notify them on the laptop (nil when
// none waits; ingest.Presence). The link is not in it: only its hash is
// kept, and the person gets it through the outputs.
func (s *Service) Notice(ctx context.Context, deviceID string) (*agentv1.PresenceCheckNotice, error) {
	if !s.Enabled() {
		return nil, nil
	}
	cs, err := s.checks.ChecksAwaitingPerson(ctx, deviceID, s.now())
	if err != nil || len(cs) == 0 {
		return nil, err
	}
	c := cs[len(cs)-1] // the newest
	return &agentv1.PresenceCheckNotice{CheckId: c.ID, ExpiresAt: timestamppb.New(c.ExpiresAt), Origin: s.origin()}, nil
}

// origin is the scheme and host of the pages (PublicURL without a path).
func (s *Service) origin() string {
	u, err := url.Parse(s.cfg.PublicURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// Corroborate judges a check with the snapshot the device's agent
// reported for it from egress address ip (ingest.Presence). A report for
// a check that no longer waits (already judged, a retried report) changes
// nothing.
func (s *Service) Corroborate(ctx context.Context, deviceID, checkID, reportID string, ip netip.Addr, sn *agentv1.HostSnapshot) error {
	c, err := s.checks.GetCheck(ctx, checkID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("unknown presence check %s", checkID)
	}
	if err != nil {
		return err
	}
	if c.DeviceID != deviceID {
		return fmt.Errorf("presence check %s is for device %s, not %s", checkID, c.DeviceID, deviceID)
	}
	if c.State != presencestore.Verifying {
		return nil
	}
	agentIP := ""
	if ip.IsValid() {
		agentIP = ip.Unmap().String()
	}
	o := Observe(sn)
	reasons := Judge(o, c.BrowserIP, agentIP)
	_, err = s.finish(ctx, c, []string{presencestore.Verifying}, reasons, presencestore.Result{AgentIP: agentIP, AgentReport: reportID, Observation: o})
	if errors.Is(err, presencestore.ErrDone) {
		return nil
	}
	return err
}

// finish ends a check with reasons (none: passed).
func (s *Service) finish(ctx context.Context, c presencestore.Check, from, reasons []string, r presencestore.Result) (presencestore.Check, error) {
	r.Passed, r.Reasons = len(reasons) == 0, reasons
	if !r.Passed {
		r.Alert = &detect.Finding{
			RuleID: RuleID, Title: "Presence check failed", Severity: "high", Category: "presence", Tags: []string{"presence", "laptop_farm"},
			Description: "The person did not prove on demand that they are at their laptop: " + strings.Join(reasons, ", ") +
				". A failed check is one signal to investigate, never proof on its own.",
			Evidence: map[string]any{"check_id": c.ID, "person": c.Person, "reasons": reasons, "browser_ip": c.BrowserIP,
				"agent_ip": r.AgentIP, "requested_by": c.RequestedBy, "observation": r.Observation},
		}
	}
	out, err := s.checks.FinishCheck(ctx, c.ID, from, r, s.now().UTC().Truncate(time.Microsecond), s.rules)
	if err == nil {
		s.log.Info("presence check completed", "check", c.ID, "person", c.Person, "outcome", out.State, "reasons", reasons)
	}
	return out, err
}

// Expire fails the open checks past their deadline (reason expired) and
// returns how many it failed; it also forgets ceremonies begun and never
// answered.
func (s *Service) Expire(ctx context.Context) (int, error) {
	if err := s.checks.DeleteExpiredChallenges(ctx, s.now()); err != nil {
		return 0, err
	}
	cs, err := s.checks.ExpiredChecks(ctx, s.now())
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cs {
		_, err := s.finish(ctx, c, []string{presencestore.Pending, presencestore.Verifying}, []string{ReasonExpired}, presencestore.Result{})
		switch {
		case errors.Is(err, presencestore.ErrDone):
		case err != nil:
			return n, err
		default:
			n++
		}
	}
	return n, nil
}

// autoWindow is how far back AutoRequest looks for alert openings: an
// opening refused for the moment (outside work hours, the daily cap) is
// tried again until it is this old.
const autoWindow = time.Hour

// AutoRequest asks for a check of the person bound to a laptop on which
// an alert of one of Config.AutoRules opened or re-opened in the last
// hour: one check per opening, refused like an analyst's when the person
// is not enrolled on that laptop, outside their work hours or at the
// daily cap. It returns how many checks it asked for.
func (s *Service) AutoRequest(ctx context.Context) (int, error) {
	if !s.Enabled() || len(s.cfg.AutoRules) == 0 {
		return 0, nil
	}
	ops, err := s.checks.AlertOpenings(ctx, s.now().Add(-autoWindow))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range ops {
		if o.RuleID == RuleID || !slices.ContainsFunc(s.cfg.AutoRules, func(p string) bool { ok, _ := path.Match(p, o.RuleID); return ok }) {
			continue
		}
		c, err := s.request(ctx, o.Person, o.DeviceID, fmt.Sprintf("automatic: alert %d (%s)", o.AlertID, o.RuleID), "rule:"+o.RuleID, o.Key())
		switch {
		case err == nil:
			n++
			s.log.Info("presence check asked automatically", "check", c.ID, "person", o.Person, "alert", o.AlertID, "rule", o.RuleID)
		case errors.Is(err, presencestore.ErrDone), errors.Is(err, ErrNotEnrolled), errors.Is(err, ErrOutsideWorkHours),
			errors.Is(err, presencestore.ErrCap), errors.Is(err, store.ErrNotFound):
		default:
			return n, err
		}
	}
	return n, nil
}

// Run expires unanswered checks and asks for automatic ones every
// interval until ctx ends. Every replica may run it: finishing a check is
// guarded by its state, and an automatic check is asked once per alert
// opening.
func (s *Service) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if n, err := s.Expire(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("presence check expiry", "err", err)
		} else if n > 0 {
			s.log.Info("presence checks expired", "checks", n)
		}
		if _, err := s.AutoRequest(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("automatic presence checks", "err", err)
		}
	}
}

// user is a person as WebAuthn sees them.
type user struct {
	handle []byte
	email  string
	name   string
	creds  []webauthn.Credential
}

func (u *user) WebAuthnID() []byte                         { return u.handle }
func (u *user) WebAuthnName() string                       { return u.email }
func (u *user) WebAuthnDisplayName() string                { return u.name }
func (u *user) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// loadUser builds the WebAuthn user of a person from their credentials;
// a person without any gets handle, else a new random one.
func (s *Service) loadUser(ctx context.Context, email string, handle []byte) (*user, []presencestore.Credential, error) {
	p, err := s.st.GetPerson(ctx, email)
	if err != nil {
		return nil, nil, err
	}
	creds, err := s.checks.Credentials(ctx, email)
	if err != nil {
		return nil, nil, err
	}
	u := &user{email: p.Email, name: p.Name}
	if u.name == "" {
		u.name = p.Email
	}
	for _, c := range creds {
		var wc webauthn.Credential
		if err := json.Unmarshal(c.Record, &wc); err != nil {
			return nil, nil, fmt.Errorf("credential %s: %w", c.ID, err)
		}
		u.creds = append(u.creds, wc)
		if u.handle == nil {
			u.handle, _ = base64.RawURLEncoding.DecodeString(c.UserHandle)
		}
	}
	if u.handle == nil && len(handle) > 0 {
		u.handle = handle
	}
	if u.handle == nil {
		u.handle = make([]byte, 32)
		rand.Read(u.handle)
	}
	return u, creds, nil
}
