package outputs

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
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

// receiver is a webhook receiver on loopback that checks signatures and
// answers 503 to the first failFirst requests.
type receiver struct {
	t         *testing.T
	secret    string
	mu        sync.Mutex
	failFirst int
	requests  []http.Header
	bodies    []map[string]any // the accepted ones
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if got, want := req.Header.Get("X-Bonafide-Signature"), Signature(r.secret, b); got != want {
		r.t.Errorf("signature %q, want %q", got, want)
	}
	r.requests = append(r.requests, req.Header.Clone())
	if len(r.requests) <= r.failFirst {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		r.t.Errorf("body %s: %v", b, err)
	}
	r.bodies = append(r.bodies, m)
}

func (r *receiver) accepted() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.bodies...)
}

// syslogReceiver reads octet-counted syslog messages on a loopback TCP port.
func syslogReceiver(t *testing.T) (addr string, msgs <-chan string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan string, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					n, err := br.ReadString(' ')
					if err != nil {
						return
					}
					l, err := strconv.Atoi(strings.TrimSpace(n))
					if err != nil {
						t.Errorf("syslog frame length %q", n)
						return
					}
					b := make([]byte, l)
					if _, err := io.ReadFull(br, b); err != nil {
						return
					}
					ch <- string(b)
				}
			}()
		}
	}()
	return l.Addr().String(), ch
}

// TestOutboxDelivery runs the outputs over a real store: audit entries
// reach a signed webhook in order through its outage (retries keep the
// delivery id) and a syslog receiver as CEF; the state shows progress and
// the last error; a broken edit of the file is refused and shown; a test
// event goes out at once.
func TestOutboxDelivery(t *testing.T) {
	storetest.Engines(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		st := storetest.Open(t, dsn)
		rec := &receiver{t: t, secret: "hunter2", failFirst: 2}
		hook := httptest.NewServer(rec)
		defer hook.Close()
		sysAddr, sysMsgs := syslogReceiver(t)

		dir := t.TempDir()
		file := filepath.Join(dir, "outputs.yaml")
		cfg := fmt.Sprintf(`outputs:
  - {name: hook, type: webhook, url: %q, secret_file: hook.secret, events: [audit], max_backoff: 1s}
  - {name: siem, type: syslog, address: %q, protocol: tcp, format: cef, events: [audit]}
  - {name: lake, type: ocsf, path: findings.jsonl}
`, hook.URL, sysAddr)
		os.WriteFile(file, []byte(cfg), 0o600)
		os.WriteFile(filepath.Join(dir, "hook.secret"), []byte("hunter2\n"), 0o600)
		m := New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{Collector: "https://bonafide.example.com", Version: "test", Poll: 20 * time.Millisecond})
		if _, err := m.Reload(file, time.Now()); err != nil {
			t.Fatal(err)
		}
		// The outputs start at the end of the outbox, where the senders
		// will find them.
		for _, o := range []string{"hook", "siem", "lake"} {
			if _, err := st.StartOutput(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { m.Run(runCtx); close(done) }()
		defer func() { stop(); <-done }()

		for _, r := range []string{"rule_a", "rule_b", "rule_c"} {
			if _, err := st.SetRuleEnabled(ctx, r, false, "noisy = yes\nreally", "user:ana"); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "three webhook deliveries", func() bool { return len(rec.accepted()) == 3 })
		for i, b := range rec.accepted() {
			if b["event"] != "audit" || b["target_id"] != []string{"rule_a", "rule_b", "rule_c"}[i] || b["collector"] != "https://bonafide.example.com" || b["actor"] != "user:ana" {
				t.Errorf("delivery %d: %v", i, b)
			}
		}
		rec.mu.Lock()
		if len(rec.requests) != 5 {
			t.Errorf("%d requests, want 2 failed and 3 delivered", len(rec.requests))
		}
		for _, h := range rec.requests[:3] {
			if h.Get("X-Bonafide-Delivery") != rec.requests[0].Get("X-Bonafide-Delivery") || h.Get("X-Bonafide-Delivery") == "" {
				t.Errorf("a retry changed the delivery id: %v", h)
			}
		}
		if rec.requests[3].Get("X-Bonafide-Delivery") == rec.requests[2].Get("X-Bonafide-Delivery") {
			t.Error("two events with one delivery id")
		}
		rec.mu.Unlock()

		for _, want := range []string{"rule_a", "rule_b", "rule_c"} {
			select {
			case msg := <-sysMsgs:
				if !strings.Contains(msg, "CEF:0|Bonafide|bonafide-collector|test|audit:disable|user:ana: disable rule "+want+"|1|") ||
					!strings.Contains(msg, `msg={"reason":"noisy \= yes\\nreally"}`) || !strings.HasPrefix(msg, "<38>1 ") {
					t.Errorf("syslog message %q", msg)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("no syslog message")
			}
		}

		var s Status
		waitFor(t, "progress recorded", func() bool {
			var err error
			if s, err = m.Status(ctx); err != nil {
				t.Fatal(err)
			}
			return s.Outputs[0].Delivered == 3
		})
		h := s.Outputs[0]
		if h.Name != "hook" || h.Delivered != 3 || h.Failures != 0 || !strings.Contains(h.LastError, "503 Service Unavailable: down for maintenance") ||
			h.Target != "http://"+strings.TrimPrefix(hook.URL, "http://") || s.LastError != "" {
			t.Errorf("status %+v", s)
		}
		if lake := s.Outputs[2]; lake.Delivered != 0 {
			t.Errorf("audit entries reached the ocsf output: %+v", lake)
		}

		// A broken edit keeps the outputs and is shown.
		os.WriteFile(file, []byte(strings.Replace(cfg, "type: syslog", "type: syslogd", 1)), 0o600)
		if _, err := m.Reload(file, time.Now()); err == nil {
			t.Fatal("a broken edit loaded")
		}
		if s, _ := m.Status(ctx); !strings.Contains(s.LastError, `type "syslogd"`) || len(s.Outputs) != 3 || s.LastErrorAt.IsZero() {
			t.Fatalf("broken edit: %+v", s)
		}
		if _, err := st.SetRuleEnabled(ctx, "rule_d", false, "", "user:ana"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "delivery after a refused edit", func() bool { return len(rec.accepted()) == 4 })
		os.WriteFile(file, []byte(cfg), 0o600)
		if _, err := m.Reload(file, time.Now()); err != nil {
			t.Fatal(err)
		}
		if s, _ := m.Status(ctx); s.LastError != "" {
			t.Fatalf("error kept after a good edit: %s", s.LastError)
		}

		// A test event, past the filters, at once.
		id, err := m.SendTest(ctx, "hook")
		if err != nil || id == "" {
			t.Fatal(id, err)
		}
		if b := rec.accepted(); b[4]["event"] != "test" || b[4]["title"] != "Test event from bonafide" {
			t.Fatalf("test event %v", b[4])
		}
		if _, err := m.SendTest(ctx, "nope"); err != ErrNoOutput {
			t.Fatalf("unknown output: %v", err)
		}
		if _, err := m.SendTest(ctx, "lake"); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "findings.jsonl")); err != nil || !strings.Contains(string(b), `"class_uid":2004`) {
			t.Fatalf("ocsf test event: %s %v", b, err)
		}
	})
}

// waitFor polls ok for up to a minute.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestOutboxReplicas: two collectors on one PostgreSQL run the outputs;
// one at a time delivers, so every event arrives once, in order.
func TestOutboxReplicas(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx := t.Context()
	rec := &receiver{t: t, secret: "s"}
	hook := httptest.NewServer(rec)
	defer hook.Close()
	file := filepath.Join(t.TempDir(), "outputs.yaml")
	os.WriteFile(file, []byte(fmt.Sprintf("outputs:\n  - {name: hook, type: webhook, url: %q, secret: s, events: [audit]}\n", hook.URL)), 0o600)
	var stores []*store.Store
	for range 2 {
		st := storetest.Open(t, dsn)
		stores = append(stores, st)
		m := New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{Poll: 10 * time.Millisecond})
		if _, err := m.Reload(file, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := st.StartOutput(ctx, "hook"); err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { m.Run(runCtx); close(done) }()
		defer func() { stop(); <-done }()
	}
	const n = 20
	for i := range n {
		if _, err := stores[i%2].SetRuleEnabled(ctx, fmt.Sprintf("rule_%02d", i), false, "", "user:ana"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all deliveries", func() bool { return len(rec.accepted()) >= n })
	time.Sleep(time.Second) // a second sender would deliver again now
	got := rec.accepted()
	if len(got) != n {
		t.Fatalf("%d deliveries of %d events", len(got), n)
	}
	for i, b := range got {
		if want := fmt.Sprintf("rule_%02d", i); b["target_id"] != want {
			t.Fatalf("delivery %d is %v, want %s", i, b["target_id"], want)
		}
	}
}

// TestSyslogTLSAndUDP: over TLS (the receiver's CA from ca_file) each
// message is octet-counted; over UDP each is one datagram.
func TestSyslogTLSAndUDP(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "syslog test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	msgs := make(chan string, 10)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			n, err := br.ReadString(' ')
			if err != nil {
				return
			}
			size, _ := strconv.Atoi(strings.TrimSpace(n))
			b := make([]byte, size)
			if _, err := io.ReadFull(br, b); err != nil {
				return
			}
			msgs <- string(b)
		}
	}()
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	file := filepath.Join(dir, "outputs.yaml")
	os.WriteFile(file, []byte(fmt.Sprintf(`outputs:
  - {name: tls, type: syslog, address: %q, protocol: tls, ca_file: ca.pem}
  - {name: udp, type: syslog, address: %q, protocol: udp, format: json}
`, l.Addr(), u.LocalAddr())), 0o600)
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range c.Outputs {
		sk, err := newSink(&o, testEnv)
		if err != nil {
			t.Fatal(err)
		}
		defer sk.Close()
		for _, rule := range []string{"rule_a", "rule_b"} {
			ev := alertEvent(store.EventNew)
			ev.Alert.RuleID = rule
			if err := sk.Send(t.Context(), ev); err != nil {
				t.Fatalf("%s: %v", o.Name, err)
			}
		}
	}
	for _, rule := range []string{"rule_a", "rule_b"} {
		select {
		case m := <-msgs:
			if !strings.HasPrefix(m, "<35>1 ") || !strings.Contains(m, "|"+rule+"|") {
				t.Errorf("tls message %q", m)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no message over TLS")
		}
		b := make([]byte, maxUDP)
		u.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := u.ReadFrom(b)
		if err != nil {
			t.Fatal(err)
		}
		if m := string(b[:n]); !strings.HasPrefix(m, "<35>1 ") || !strings.Contains(m, `"rule_id":"`+rule+`"`) {
			t.Errorf("udp message %q", m)
		}
	}
}
