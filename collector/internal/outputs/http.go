package outputs

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// httpSink POSTs each event to a URL: the signed JSON of a webhook, a
// Slack or Teams message, or an OCSF finding.
type httpSink struct {
	o      *Output
	body   func(Event) ([]byte, error)
	client *http.Client
}

func newHTTP(o *Output, body func(Event) ([]byte, error)) *httpSink {
	// A redirect is not followed (it would turn the POST into a GET): it
	// is an answer other than 2xx, so an error to fix in the URL.
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &httpSink{o: o, body: body, client: &http.Client{Timeout: o.Timeout, CheckRedirect: noRedirect}}
}

// Signature is the X-Bonafide-Signature of body: "sha256=" and the hex
// HMAC-SHA256 of the raw body with the output's secret.
func Signature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func (s *httpSink) Send(ctx context.Context, ev Event) error {
	b, err := s.body(ev)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.o.URL, bytes.NewReader(b))
	if err != nil {
		return err
	}
	for k, v := range s.o.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "bonafide-collector")
	req.Header.Set("X-Bonafide-Delivery", ev.UID)
	req.Header.Set("X-Bonafide-Event", ev.Event)
	if s.o.Secret != "" {
		req.Header.Set("X-Bonafide-Signature", Signature(s.o.Secret, b))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// The URL may be a secret (Slack, Teams): name its host only.
		return fmt.Errorf("POST %s: %w", s.o.target(), unwrapURL(err))
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", s.o.target(), resp.Status, strings.TrimSpace(strings.ToValidUTF8(string(msg), "?")))
	}
	return nil
}

// unwrapURL drops the URL from a client error.
func unwrapURL(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

func (s *httpSink) Close() error { s.client.CloseIdleConnections(); return nil }

// slackEscape escapes text for Slack's mrkdwn.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// slackBody is a Slack incoming-webhook message: a header with the
// title, the severity, host, person, rule and status, and a link.
func slackBody(ev Event, e env) ([]byte, error) {
	if a := ev.Audit; a != nil {
		t := "bonafide audit: " + slackEscape.Replace(auditSummary(a))
		return marshal(map[string]any{"text": t})
	}
	a := ev.Alert
	head := fmt.Sprintf("[%s] %s", strings.ToUpper(a.Severity), a.Title)
	if len(head) > 150 {
		head = head[:147] + "..."
	}
	fields := []map[string]string{}
	for _, f := range chatFacts(ev) {
		fields = append(fields, map[string]string{"type": "mrkdwn", "text": "*" + f[0] + "*\n" + slackEscape.Replace(f[1])})
	}
	blocks := []any{
		map[string]any{"type": "header", "text": map[string]any{"type": "plain_text", "text": strings.ToValidUTF8(head, "?")}},
		map[string]any{"type": "section", "fields": fields},
	}
	if l := e.link(a); l != "" {
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]string{"type": "mrkdwn", "text": "<" + l + "|Open the alert in bonafide>"}})
	}
	return marshal(map[string]any{"text": slackEscape.Replace(head + " on " + a.Hostname), "blocks": blocks})
}

// chatFacts are the facts chat messages show (Slack allows ten fields).
func chatFacts(ev Event) [][2]string {
	a := ev.Alert
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	return [][2]string{
		{"Severity", a.Severity}, {"Host", dash(a.Hostname)}, {"Person", dash(a.Person)},
		{"Rule", a.RuleID}, {"Status", a.Status}, {"Event", ev.Event},
	}
}

// teamsBody is a Microsoft Teams incoming-webhook message: an Adaptive
// Card with the title, the facts and a button to the alert.
func teamsBody(ev Event, e env) ([]byte, error) {
	var body []any
	var actions []any
	if a := ev.Audit; a != nil {
		body = []any{map[string]any{"type": "TextBlock", "text": "bonafide audit: " + auditSummary(a), "wrap": true}}
	} else {
		a := ev.Alert
		facts := []map[string]string{}
		for _, f := range chatFacts(ev) {
			facts = append(facts, map[string]string{"title": f[0], "value": f[1]})
		}
		body = []any{
			map[string]any{"type": "TextBlock", "text": a.Title, "weight": "Bolder", "size": "Medium", "wrap": true},
			map[string]any{"type": "FactSet", "facts": facts},
		}
		if l := e.link(a); l != "" {
			actions = append(actions, map[string]string{"type": "Action.OpenUrl", "title": "Open the alert in bonafide", "url": l})
		}
	}
	card := map[string]any{"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.4", "body": body}
	if len(actions) > 0 {
		card["actions"] = actions
	}
	return marshal(map[string]any{"type": "message", "attachments": []any{
		map[string]any{"contentType": "application/vnd.microsoft.card.adaptive", "content": card},
	}})
}
