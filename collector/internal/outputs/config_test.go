package outputs

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

const goodConfig = `
outputs:
  - name: soc-webhook
    type: webhook
    url: https://hooks.example.com/bonafide
    secret: s3cret
    min_severity: high
    rules: [remote_access_*, kvm_device]
    events: [new, reopened, audit]
    headers: {Authorization: "Splunk 1234"}
  - name: chat
    type: slack
    url: https://hooks.slack.com/services/T0/B0/XXXX
  - name: teams
    type: teams
    url: https://example.webhook.office.com/webhookb2/abc
  - name: siem
    type: syslog
    address: siem.example.com:6514
    protocol: tls
  - name: lake
    type: ocsf
    path: /var/log/bonafide/findings.ocsf.jsonl
    max_size_mb: 50
`

func TestParseConfig(t *testing.T) {
	c, err := Parse([]byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Outputs) != 5 {
		t.Fatalf("%d outputs", len(c.Outputs))
	}
	w, sl, sys, lake := c.Outputs[0], c.Outputs[1], c.Outputs[3], c.Outputs[4]
	if w.Timeout != 10*time.Second || w.MaxBackoff != 5*time.Minute || !slices.Equal(w.Events, []string{"new", "reopened", "audit"}) {
		t.Errorf("webhook defaults: %+v", w)
	}
	if !slices.Equal(sl.Events, []string{"new", "reopened", "status"}) {
		t.Errorf("default events %v", sl.Events)
	}
	if sys.Format != "cef" || sys.Protocol != "tls" || lake.MaxSizeMB != 50 || lake.MaxFiles != 5 {
		t.Errorf("defaults: %+v %+v", sys, lake)
	}
	if got := sl.target(); got != "https://hooks.slack.com" {
		t.Errorf("a slack URL shown as %q", got)
	}
	if c, err := Parse(nil); err != nil || len(c.Outputs) != 0 {
		t.Errorf("an empty file: %v %v", c, err)
	}

	for _, c := range []struct{ yaml, err string }{
		{"outputs:\n  - {name: a, type: webhook, url: 'https://x', secret: s, colour: red}", "field colour not found"},
		{"outputs:\n  - {name: a, type: pager}", `type "pager"`},
		{"outputs:\n  - {name: 'a b', type: slack, url: 'https://x'}", "name:"},
		{"outputs:\n  - {name: a, type: webhook, url: 'https://x'}", "secret or secret_file is required"},
		{"outputs:\n  - {name: a, type: webhook, url: 'ftp://x', secret: s}", "url:"},
		{"outputs:\n  - {name: a, type: webhook, url: 'https://x', secret: s, secret_file: f}", "give one"},
		{"outputs:\n  - {name: a, type: slack, url: 'https://x', address: 'h:1'}", "address is not a key of slack outputs"},
		{"outputs:\n  - {name: a, type: syslog, address: 'nohost'}", "host:port"},
		{"outputs:\n  - {name: a, type: syslog, address: 'h:514', protocol: sctp}", "tcp, tls or udp"},
		{"outputs:\n  - {name: a, type: syslog, address: 'h:514', format: leef}", "cef or json"},
		{"outputs:\n  - {name: a, type: syslog, address: 'h:514', ca_file: ca.pem}", "ca_file needs protocol tls"},
		{"outputs:\n  - {name: a, type: ocsf}", "one of path"},
		{"outputs:\n  - {name: a, type: ocsf, path: f, url: 'https://x'}", "one of path"},
		{"outputs:\n  - {name: a, type: ocsf, path: f, events: [audit]}", "not OCSF detection findings"},
		{"outputs:\n  - {name: a, type: ocsf, path: f, max_size_mb: 100000}", "max_size_mb"},
		{"outputs:\n  - {name: a, type: ocsf, url: 'https://x', max_files: 3}", "for a file"},
		{"outputs:\n  - {name: a, type: slack, url: 'https://x', min_severity: urgent}", "min_severity"},
		{"outputs:\n  - {name: a, type: slack, url: 'https://x', events: [deleted]}", `"deleted" is not one of`},
		{"outputs:\n  - {name: a, type: slack, url: 'https://x', rules: ['[']}", "rules:"},
		{"outputs:\n  - {name: a, type: slack, url: 'https://x', max_backoff: 10ms}", "max_backoff"},
		{"outputs:\n  - {name: a, type: slack, url: 'https://x', timeout: 1h}", "timeout"},
		{"outputs:\n  - {name: a, type: webhook, url: 'https://x', secret: s, headers: {'X-Bonafide-Signature': x}}", "set by the collector"},
		{"outputs:\n  - {name: a, type: webhook, url: 'https://x', secret: s, headers: {'Bad Header': x}}", "not a valid header"},
		{"outputs:\n  - {name: a, type: slack, url: 'https://x'}\n  - {name: a, type: slack, url: 'https://y'}", "used twice"},
		{"outputs: {name: a}", "cannot unmarshal"},
		{"outputs:\n  - {name: a, type: webhook, url: 'https://x', secret: '" + strings.Repeat("s", maxSecret+1) + "'}", "secret: at most"},
		{strings.Repeat("#", maxFileSize+1), "larger than"},
	} {
		_, err := Parse([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%.80q: error %v, want %q", c.yaml, err, c.err)
		}
	}
	many := "outputs:\n" + strings.Repeat("  - {name: a, type: slack, url: 'https://x'}\n", maxOutputs+1)
	if _, err := Parse([]byte(many)); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("%d outputs: %v", maxOutputs+1, err)
	}
}

// TestLoadConfig: secret_file and ca_file are read relative to the
// outputs file; a missing or empty secret file is an error.
func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "outputs.yaml")
	os.WriteFile(file, []byte("outputs:\n  - {name: w, type: webhook, url: 'http://127.0.0.1:1/', secret_file: hook.secret}\n"+
		"  - {name: o, type: ocsf, path: out/findings.jsonl}\n"), 0o600)
	if _, err := Load(file); err == nil || !strings.Contains(err.Error(), "secret_file") {
		t.Fatalf("missing secret file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "hook.secret"), []byte("\n"), 0o600)
	if _, err := Load(file); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("empty secret file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "hook.secret"), []byte("from-file\n"), 0o600)
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if c.Outputs[0].Secret != "from-file" || c.Outputs[1].Path != filepath.Join(dir, "out/findings.jsonl") {
		t.Fatalf("loaded %+v", c.Outputs)
	}
}

// TestFilters: min_severity, rules patterns and events.
func TestFilters(t *testing.T) {
	c, err := Parse([]byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	w, chat := &c.Outputs[0], &c.Outputs[1]
	ev := func(event, rule, sev string) store.OutboxEvent {
		return store.OutboxEvent{Event: event, RuleID: rule, Severity: sev}
	}
	for _, c := range []struct {
		o    *Output
		ev   store.OutboxEvent
		want bool
	}{
		{w, ev("new", "remote_access_running", "high"), true},
		{w, ev("new", "remote_access_running", "critical"), true},
		{w, ev("new", "remote_access_running", "medium"), false},
		{w, ev("new", "vpn_client", "critical"), false},
		{w, ev("reopened", "kvm_device", "high"), true},
		{w, ev("status", "kvm_device", "high"), false},
		{w, ev("audit", "", ""), true},
		{chat, ev("status", "x", "low"), true},
		{chat, ev("audit", "", ""), false},
	} {
		if got := c.o.wants(c.ev); got != c.want {
			t.Errorf("%s wants %+v: %v", c.o.Name, c.ev, got)
		}
	}
}

// FuzzParseConfig: the outputs file is outside input. Parse never
// panics, and what it accepts is within the limits and parses again the
// same.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte("outputs:\n  - {name: a, type: syslog, address: 'h:514', protocol: udp, format: json}"))
	f.Add([]byte("outputs: [{name: x, type: ocsf, url: 'http://h/', secret: s, timeout: 5s}]"))
	f.Add([]byte("outputs:\n  - &a {name: a, type: slack, url: 'https://x'}\n  - *a"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		if len(c.Outputs) > maxOutputs {
			t.Fatalf("%d outputs", len(c.Outputs))
		}
		for _, o := range c.Outputs {
			if !nameRE.MatchString(o.Name) || typeKeys[o.Type] == nil || len(o.URL) > maxURL || len(o.Secret) > maxSecret ||
				o.Timeout <= 0 || o.MaxBackoff < time.Second || len(o.Events) == 0 {
				t.Fatalf("accepted %+v", o)
			}
			again := o
			if err := again.validate(); err != nil {
				t.Fatalf("accepted, then refused: %v", err)
			}
			if _, err := newSink(&again, testEnv); err != nil {
				t.Fatalf("accepted, no sink: %v", err)
			}
		}
	})
}
