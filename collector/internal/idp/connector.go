package idp

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/oauth2/jwt"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// GoogleScope is the Reports API scope the Google connector asks for.
const GoogleScope = "https://www.googleapis.com/auth/admin.reports.audit.readonly"

// overlap is how far before its newest stored event a Graph or Reports
// poll starts again: both APIs deliver some events minutes late, and
// events read twice are stored once (by their id).
const overlap = 15 * time.Minute

// maxPagesPerPoll bounds one Okta poll; the next poll goes on from the
// cursor stored with the last page. A Graph or Reports poll must reach
// the last page before its watermark advances (both list newest first),
// so it is bounded only against a server whose links never end.
const (
	maxPagesPerPoll   = 200
	maxWatermarkPages = 100_000
)

// Puller runs one connector: it polls the provider's API from the cursor
// kept in the database, stores each page of sign-ins with the cursor that
// follows it, and records its state (store.IdPConnector).
type Puller struct {
	conn   Connector
	st     *store.Store
	enrich *Enricher
	ev     store.Evaluator
	log    *slog.Logger
	client *http.Client
	now    func() time.Time
	// MaxWait caps any single wait: a rate-limit reset, a Retry-After,
	// a backoff after a server error.
	MaxWait time.Duration
	// notBefore is when the next request may go (Okta's
	// X-Rate-Limit-Remaining reached 0 until X-Rate-Limit-Reset).
	notBefore time.Time
}

// NewPuller prepares a connector. ev judges the people whose sign-ins
// arrive (nil: store only).
func NewPuller(ctx context.Context, conn Connector, st *store.Store, e *Enricher, ev store.Evaluator, log *slog.Logger) (*Puller, error) {
	base := &http.Client{Timeout: time.Minute}
	p := &Puller{conn: conn, st: st, enrich: e, ev: ev, log: log.With("idp", conn.Name), now: time.Now, MaxWait: 5 * time.Minute}
	octx := context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, base)
	switch conn.Provider {
	case Okta:
		p.client = &http.Client{Timeout: time.Minute, Transport: headerTransport{"Authorization": "SSWS " + string(conn.secret)}}
	case Entra:
		tokenURL := conn.TokenURL
		if tokenURL == "" {
			tokenURL = "https://login.microsoftonline.com/" + url.PathEscape(conn.TenantID) + "/oauth2/v2.0/token"
		}
		cc := &clientcredentials.Config{ClientID: conn.ClientID, ClientSecret: string(conn.secret), TokenURL: tokenURL,
			Scopes: []string{conn.base.Scheme + "://" + conn.base.Host + "/.default"}}
		p.client = cc.Client(octx)
	case Google:
		var key struct {
			Type         string `json:"type"`
			ClientEmail  string `json:"client_email"`
			PrivateKey   string `json:"private_key"`
			PrivateKeyID string `json:"private_key_id"`
			TokenURI     string `json:"token_uri"`
		}
		if err := json.Unmarshal(conn.secret, &key); err != nil || key.Type != "service_account" || key.ClientEmail == "" || key.PrivateKey == "" {
			return nil, fmt.Errorf("idp %s: credentials: not a service-account JSON key", conn.Name)
		}
		jc := &jwt.Config{Email: key.ClientEmail, PrivateKey: []byte(key.PrivateKey), PrivateKeyID: key.PrivateKeyID,
			Scopes: []string{GoogleScope}, TokenURL: cmp.Or(conn.TokenURL, key.TokenURI, "https://oauth2.googleapis.com/token"),
			Subject: conn.Subject}
		p.client = jc.Client(octx)
	}
	p.client.Timeout = time.Minute
	return p, nil
}

// headerTransport adds headers to every request.
type headerTransport map[string]string

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h {
		r.Header.Set(k, v)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// lockKey names the connector's advisory lock: one replica polls it at a
// time.
func (p *Puller) lockKey() int64 {
	h := fnv.New64a()
	h.Write([]byte("bonafide idp " + p.conn.Name))
	return int64(h.Sum64() &^ (1 << 63))
}

// Run polls every poll interval until ctx ends.
func (p *Puller) Run(ctx context.Context) error {
	for {
		ok, unlock, err := p.st.TryLock(ctx, p.lockKey())
		if err == nil && ok {
			if err := p.Poll(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("idp poll failed", "err", err)
			}
			unlock()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(p.conn.PollInterval):
		}
	}
}

// Poll reads everything new since the stored cursor. A failure is
// recorded in the connector's state; what was stored before it stays,
// and the next poll goes on from there.
func (p *Puller) Poll(ctx context.Context) error {
	cursor, err := p.st.IdPCursor(ctx, p.conn.Name)
	if err == nil {
		switch p.conn.Provider {
		case Okta:
			err = p.pollOkta(ctx, cursor)
		case Entra:
			err = p.pollWatermark(ctx, cursor, p.entraPage)
		case Google:
			err = p.pollWatermark(ctx, cursor, p.googlePage)
		}
	}
	if err != nil && ctx.Err() == nil {
		if serr := p.st.IdPError(ctx, p.conn.Name, p.conn.Provider, err.Error(), p.now()); serr != nil {
			return errors.Join(err, serr)
		}
	}
	return err
}

// commit enriches and stores a page with the cursor after it.
func (p *Puller) commit(ctx context.Context, cursor string, parsed Parsed) error {
	for _, re := range parsed.Errors {
		p.log.Warn("idp record refused", "record", re.Index, "id", re.ID, "err", re.Err)
	}
	p.enrich.Enrich(parsed.Signins)
	res, err := p.st.CommitIdPPage(ctx, p.conn.Name, p.conn.Provider, cursor, parsed.Signins, p.ev, p.now())
	if err == nil && res.Added > 0 {
		p.log.Info("idp sign-ins stored", "added", res.Added, "duplicate", res.Duplicate, "people", len(res.People))
	}
	return err
}

// pollOkta follows the System Log's polling links: the first request
// asks for events since the lookback in ascending order; each page's
// Link rel="next" is the cursor, and it stays valid after the last page
// (Okta keeps returning it for polling), so it is stored with every page.
func (p *Puller) pollOkta(ctx context.Context, cursor string) error {
	next := cursor
	if next != "" {
		if _, err := p.sameHost(next); err != nil { // base_url changed since
			p.log.Warn("idp cursor is for another host; starting again from the lookback", "err", err)
			next = ""
		}
	}
	if next == "" {
		q := url.Values{"since": {p.now().Add(-p.conn.Lookback).UTC().Format(time.RFC3339)}, "sortOrder": {"ASCENDING"}, "limit": {"1000"}}
		next = p.conn.base.String() + "/api/v1/logs?" + q.Encode()
	}
	for range maxPagesPerPoll {
		body, h, err := p.get(ctx, next)
		if err != nil {
			return err
		}
		parsed, err := ParseOkta(body)
		if err != nil {
			return err
		}
		link := nextLink(h.Values("Link"))
		if link != "" {
			if _, err := p.sameHost(link); err != nil {
				return err
			}
		}
		after := link
		if after == "" {
			after = next
		}
		if err := p.commit(ctx, after, parsed); err != nil {
			return err
		}
		if link == "" || link == next || len(parsed.Signins)+len(parsed.Errors)+parsed.Skipped == 0 {
			return nil
		}
		next = link
	}
	return nil
}

var linkNext = regexp.MustCompile(`<([^>]+)>\s*;\s*rel="?next"?`)

// nextLink is the target of a Link header's rel="next".
func nextLink(links []string) string {
	for _, l := range links {
		for part := range strings.SplitSeq(l, ",") {
			if m := linkNext.FindStringSubmatch(part); m != nil {
				return m[1]
			}
		}
	}
	return ""
}

// sameHost refuses a link to another host than the configured API's: the
// connector's credentials go only there.
func (p *Puller) sameHost(link string) (*url.URL, error) {
	u, err := url.Parse(link)
	if err != nil {
		return nil, fmt.Errorf("next link %q: %w", clip(link, 200), err)
	}
	u = p.conn.base.ResolveReference(u)
	if u.Scheme != p.conn.base.Scheme || u.Host != p.conn.base.Host {
		return nil, fmt.Errorf("next link %q: not on %s", clip(link, 200), p.conn.base.Host)
	}
	return u, nil
}

// pageFunc reads one page of a watermark-cursor API: the first (next
// empty, from since) or the one next names. It returns the page and the
// next page's link or token ("" after the last).
type pageFunc func(ctx context.Context, since time.Time, next string) (Parsed, string, error)

// pollWatermark reads Graph or Reports pages from the stored watermark
// (the newest event time stored, less overlap) until the last page; the
// pages are stored as they come, and the watermark advances once the last
// page is stored, so that a poll cut short starts again from the old one
// (the events stored already are recognised by their id).
func (p *Puller) pollWatermark(ctx context.Context, cursor string, page pageFunc) error {
	mark, err := time.Parse(time.RFC3339Nano, cursor)
	since := mark.Add(-overlap)
	if err != nil || cursor == "" {
		mark, since = time.Time{}, p.now().Add(-p.conn.Lookback)
	}
	newest := mark
	next := ""
	for range maxWatermarkPages {
		parsed, link, err := page(ctx, since, next)
		if err != nil {
			return err
		}
		if link != "" && link == next {
			return fmt.Errorf("the provider returned the same next page again (%s)", clip(redact(link), 200))
		}
		for _, si := range parsed.Signins {
			if si.At.After(newest) {
				newest = si.At
			}
		}
		last := link == ""
		c := cursor
		if last && !newest.IsZero() {
			c = newest.UTC().Format(time.RFC3339Nano)
		}
		if err := p.commit(ctx, c, parsed); err != nil {
			return err
		}
		if last {
			return nil
		}
		next = link
	}
	return fmt.Errorf("more than %d pages in one poll", maxWatermarkPages)
}

// entraPage reads one page of GET /v1.0/auditLogs/signIns.
func (p *Puller) entraPage(ctx context.Context, since time.Time, next string) (Parsed, string, error) {
	u := next
	if u == "" {
		q := url.Values{"$filter": {"createdDateTime ge " + since.UTC().Format("2006-01-02T15:04:05Z")}, "$top": {"1000"}}
		u = p.conn.base.String() + "/v1.0/auditLogs/signIns?" + q.Encode()
	} else if _, err := p.sameHost(u); err != nil {
		return Parsed{}, "", err
	}
	body, _, err := p.get(ctx, u)
	if err != nil {
		return Parsed{}, "", err
	}
	parsed, err := ParseEntra(body)
	if err != nil {
		return Parsed{}, "", err
	}
	var page struct {
		NextLink string `json:"@odata.nextLink"`
	}
	json.Unmarshal(body, &page)
	return parsed, page.NextLink, nil
}

// googlePage reads one page of activities.list for application login.
func (p *Puller) googlePage(ctx context.Context, since time.Time, token string) (Parsed, string, error) {
	q := url.Values{"startTime": {since.UTC().Format(time.RFC3339)}, "maxResults": {"1000"}}
	if token != "" {
		q.Set("pageToken", token)
	}
	body, _, err := p.get(ctx, p.conn.base.String()+"/admin/reports/v1/activity/users/all/applications/login?"+q.Encode())
	if err != nil {
		return Parsed{}, "", err
	}
	parsed, err := ParseGoogle(body)
	if err != nil {
		return Parsed{}, "", err
	}
	var page struct {
		NextPageToken string `json:"nextPageToken"`
	}
	json.Unmarshal(body, &page)
	return parsed, page.NextPageToken, nil
}

// maxAttempts bounds the tries of one request (rate limits and server
// errors); then the poll fails and the next one goes on from the cursor.
const maxAttempts = 6

// get fetches one page, honouring rate limits (Okta's X-Rate-Limit-*
// headers, Retry-After on 429 and 503) and backing off on server errors.
func (p *Puller) get(ctx context.Context, u string) ([]byte, http.Header, error) {
	var last error
	for attempt := range maxAttempts {
		if err := p.sleep(ctx, p.notBefore.Sub(p.now())); err != nil {
			return nil, nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := p.client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			last = err
			if err := p.sleep(ctx, backoff(attempt)); err != nil {
				return nil, nil, err
			}
			continue
		}
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, MaxDocument+1))
		resp.Body.Close()
		p.noteRateLimit(resp.Header)
		switch {
		case resp.StatusCode == http.StatusOK:
			if rerr != nil {
				return nil, nil, rerr
			}
			if len(body) > MaxDocument {
				return nil, nil, ErrTooLarge
			}
			return body, resp.Header, nil
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable ||
			resp.StatusCode >= 500:
			last = fmt.Errorf("GET %s: %s: %s", redact(u), resp.Status, excerpt(body))
			wait := p.retryAfter(resp)
			if wait <= 0 {
				wait = backoff(attempt)
			}
			if err := p.sleep(ctx, wait); err != nil {
				return nil, nil, err
			}
		default:
			return nil, nil, fmt.Errorf("GET %s: %s: %s", redact(u), resp.Status, excerpt(body))
		}
	}
	return nil, nil, last
}

// noteRateLimit keeps the next request until Okta's rate-limit window
// resets when the response said none remain.
func (p *Puller) noteRateLimit(h http.Header) {
	if h.Get("X-Rate-Limit-Remaining") != "0" {
		return
	}
	if reset, err := strconv.ParseInt(h.Get("X-Rate-Limit-Reset"), 10, 64); err == nil {
		p.notBefore = time.Unix(reset, 0)
	}
}

// retryAfter is how long a 429 or 503 asks to wait: Retry-After (seconds
// or an HTTP date) or, for Okta, until X-Rate-Limit-Reset.
func (p *Puller) retryAfter(resp *http.Response) time.Duration {
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if s, err := strconv.Atoi(ra); err == nil {
			return time.Duration(s) * time.Second
		}
		if t, err := http.ParseTime(ra); err == nil {
			return t.Sub(p.now())
		}
	}
	if reset, err := strconv.ParseInt(resp.Header.Get("X-Rate-Limit-Reset"), 10, 64); err == nil && resp.StatusCode == http.StatusTooManyRequests {
		return time.Unix(reset, 0).Sub(p.now())
	}
	return 0
}

func backoff(attempt int) time.Duration { return time.Second << min(attempt, 6) }

// sleep waits d (at most MaxWait) unless ctx ends first.
func (p *Puller) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(min(d, p.MaxWait))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// redact drops a URL's query (page tokens) from error messages.
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

func excerpt(b []byte) string {
	s := strings.ToValidUTF8(string(b), "")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.Join(strings.Fields(s), " ")
}
