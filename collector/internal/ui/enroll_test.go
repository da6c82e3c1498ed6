package ui

import (
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/bonafide-sec/bonafide/collector/internal/packaging"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

const (
	testCollector = "collector.example.com:8443"
	testCAFP      = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

func TestInstallCommands(t *testing.T) {
	cmds := installCommands(testCollector, "bfe_0123abcd", testCAFP, "1.2.3")
	want := []struct{ file, cmd string }{
		{"bonafide-agent-1.2.3-x64.msi", `msiexec /i bonafide-agent-1.2.3-x64.msi COLLECTOR="collector.example.com:8443" ENROLL_SECRET="bfe_0123abcd" CA_FINGERPRINT="` + testCAFP + `" /qn`},
		{"bonafide-agent-1.2.3-universal.pkg", `sudo mkdir -p '/Library/Application Support/Bonafide' && printf 'collector: %s\nenroll_secret: %s\nca_fingerprint: %s\n' 'collector.example.com:8443' 'bfe_0123abcd' '` + testCAFP + `' | sudo tee '/Library/Application Support/Bonafide/agent.yaml' >/dev/null && sudo installer -pkg bonafide-agent-1.2.3-universal.pkg -target /`},
		{"bonafide-agent_1.2.3_amd64.deb", `sudo mkdir -p /etc/bonafide && printf 'collector: %s\nenroll_secret: %s\nca_fingerprint: %s\n' 'collector.example.com:8443' 'bfe_0123abcd' '` + testCAFP + `' | sudo tee /etc/bonafide/agent.yaml >/dev/null && sudo apt-get install ./bonafide-agent_1.2.3_amd64.deb`},
		{"bonafide-agent-1.2.3-1.x86_64.rpm", `sudo mkdir -p /etc/bonafide && printf 'collector: %s\nenroll_secret: %s\nca_fingerprint: %s\n' 'collector.example.com:8443' 'bfe_0123abcd' '` + testCAFP + `' | sudo tee /etc/bonafide/agent.yaml >/dev/null && sudo dnf install ./bonafide-agent-1.2.3-1.x86_64.rpm`},
	}
	if len(cmds) != len(want) {
		t.Fatalf("%d commands", len(cmds))
	}
	for i, w := range want {
		if cmds[i].File != w.file || cmds[i].Command != w.cmd {
			t.Errorf("command %d:\n got %s: %s\nwant %s: %s", i, cmds[i].File, cmds[i].Command, w.file, w.cmd)
		}
	}
}

// TestShellQuoting runs quoted values and the commands' agent.yaml part
// through a real POSIX shell: hostile values come out as they went in.
func TestShellQuoting(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("skipping: no sh (apt package dash)")
	}
	run := func(script string) string {
		t.Helper()
		out, err := exec.Command(sh, "-c", script).Output()
		if err != nil {
			t.Fatalf("sh -c %q: %v", script, err)
		}
		return string(out)
	}
	hostile := []string{"plain", "it's", `'`, `''\''`, "$(touch /tmp/pwned) `id` $HOME", `a"b\c`, "new\nline", "", "*"}
	for _, s := range hostile {
		if got := run("printf %s " + shellQuote(s)); got != s {
			t.Errorf("shellQuote(%q) read back as %q", s, got)
		}
		if got := run("printf %s " + shellWord(s)); got != s {
			t.Errorf("shellWord(%q) read back as %q", s, got)
		}
	}
	if shellWord("bonafide-agent_1.2.3_amd64.deb") != "bonafide-agent_1.2.3_amd64.deb" || shellWord("a b") != "'a b'" {
		t.Error("shellWord quotes plain words or leaves spaces")
	}
	if msiQuote(`a"b`) != `"a""b"` || msiWord("x.msi") != "x.msi" || msiWord("a b.msi") != `"a b.msi"` {
		t.Error("msi quoting")
	}
	// The agent.yaml the deb command writes, with hostile values.
	addr, secret, fp := "host's:8443", "bfe_$(id)", `"fp%s\n`
	cmd := installCommands(addr, secret, fp, "1.0.0")[2].Command
	start, end := strings.Index(cmd, "printf "), strings.Index(cmd, " | sudo tee")
	if start < 0 || end < 0 {
		t.Fatalf("no printf in %s", cmd)
	}
	want := "collector: " + addr + "\nenroll_secret: " + secret + "\nca_fingerprint: " + fp + "\n"
	if got := run(cmd[start:end]); got != want {
		t.Errorf("agent.yaml:\n%s\nwant\n%s", got, want)
	}
}

var (
	plainSecret = regexp.MustCompile(`bfe_[0-9a-f]{48}`)
	codeBlock   = regexp.MustCompile(`<code id="(cmd-[a-z]+)">([^<]*)</code>`)
)

func TestEnrollmentPage(t *testing.T) {
	e := newPageEnv(t, Options{Collector: testCollector, CAFingerprint: testCAFP, Version: "1.2.3"})
	root := e.signIn(t, "root")
	code, body := root.get("/ui/enrollment")
	if code != 200 || !strings.Contains(body, testCAFP) || !strings.Contains(body, testCollector) ||
		!strings.Contains(body, `action="/ui/enrollment"`) || !strings.Contains(body, "<td>seed</td>") {
		t.Fatalf("enrollment page: %d\n%s", code, body)
	}
	if plainSecret.MatchString(body) {
		t.Fatal("a secret in plain before any was created")
	}

	// Non-admins and forms without the CSRF token are refused.
	for _, user := range []string{"ana", "vic"} {
		u := e.signIn(t, user)
		if code, _, _ := u.post("/ui/enrollment", url.Values{"name": {"sneaky"}}); code != http.StatusForbidden {
			t.Errorf("%s creating a secret: %d", user, code)
		}
		if code, _, _ := u.post("/ui/enrollment/"+e.secretID+"/revoke", url.Values{}); code != http.StatusForbidden {
			t.Errorf("%s revoking a secret: %d", user, code)
		}
		_, page := u.get("/ui/enrollment")
		if strings.Contains(page, `action="/ui/enrollment"`) || strings.Contains(page, "/revoke") || !strings.Contains(page, "<td>seed</td>") {
			t.Errorf("%s's view of the enrollment page shows the forms or hides the list", user)
		}
	}
	if code, _, _ := root.post("/ui/enrollment", url.Values{"name": {"no csrf"}, "csrf": {""}}); code != http.StatusForbidden {
		t.Errorf("create without CSRF: %d", code)
	}
	if code, _, _ := root.post("/ui/enrollment", url.Values{"name": {"  "}}); code != http.StatusBadRequest {
		t.Errorf("create without a name: %d", code)
	}
	if list, _ := e.st.ListSecrets(t.Context()); len(list) != 1 {
		t.Fatalf("a refused request created a secret: %+v", list)
	}

	// The admin creates one: shown once, with the four commands.
	code, body, _ = root.post("/ui/enrollment", url.Values{"name": {`<script>alert("name")</script>`}})
	if code != 200 {
		t.Fatalf("create: %d", code)
	}
	if strings.Contains(body, `<script>alert("name")`) || !strings.Contains(body, "&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;") {
		t.Error("the secret's name is not escaped")
	}
	plain := plainSecret.FindString(body)
	if plain == "" {
		t.Fatal("the new secret is not shown")
	}
	sec, err := e.st.MatchSecret(t.Context(), plain)
	if err != nil || sec.Name != `<script>alert("name")</script>` {
		t.Fatalf("the shown secret does not enroll: %+v %v", sec, err)
	}
	want := installCommands(testCollector, plain, testCAFP, "1.2.3")
	got := codeBlock.FindAllStringSubmatch(body, -1)
	if len(got) != 4 {
		t.Fatalf("%d command blocks", len(got))
	}
	for i, m := range got {
		if m[1] != want[i].ID || html.UnescapeString(m[2]) != want[i].Command {
			t.Errorf("command %s:\n%s\nwant\n%s", m[1], html.UnescapeString(m[2]), want[i].Command)
		}
	}
	if !strings.Contains(html.UnescapeString(body), `msiexec /i bonafide-agent-1.2.3-x64.msi COLLECTOR="collector.example.com:8443" ENROLL_SECRET="`+plain+`" CA_FINGERPRINT="`+testCAFP+`" /qn`) {
		t.Error("the MSI command is not as agreed with the installers")
	}
	if !strings.Contains(body, `src="/ui/static/copy.js"`) || strings.Contains(body, "<script>") {
		t.Error("the copy script is missing or inline")
	}
	// A reload does not show it again.
	_, body = root.get("/ui/enrollment")
	if strings.Contains(body, plain) || plainSecret.MatchString(body) || !strings.Contains(body, sec.ID) {
		t.Error("the enrollment page shows the secret after a reload, or not its id")
	}

	// Revoking: the secret no longer enrolls.
	code, _, loc := root.post("/ui/enrollment/"+sec.ID+"/revoke", url.Values{})
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/enrollment?") {
		t.Fatalf("revoke: %d %q", code, loc)
	}
	if _, err := e.st.MatchSecret(t.Context(), plain); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a revoked secret matches: %v", err)
	}
	if code, _, _ := root.post("/ui/enrollment/"+sec.ID+"/revoke", url.Values{}); code != http.StatusNotFound {
		t.Errorf("revoking twice: %d", code)
	}
	_, body = root.get("/ui/enrollment")
	if !strings.Contains(body, "revoked 20") {
		t.Error("the list does not show the revocation")
	}
	if code, _ := root.get("/ui/static/copy.js"); code != 200 {
		t.Errorf("copy.js: %d", code)
	}
}

// TestEnrollmentDownload builds a pre-configured deb on the enrollment
// page from the collector's agent binaries (here the test binary stands
// in for the agent: the deb only needs a Linux ELF of the right
// architecture) and reads its agent.yaml back with dpkg-deb.
func TestEnrollmentDownload(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		storetest.Missing(t, "dpkg-deb (apt package dpkg)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	agents := t.TempDir()
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(packaging.AgentBinary(agents, "linux", runtime.GOARCH), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	e := newPageEnv(t, Options{Collector: testCollector, CAFingerprint: testCAFP, Version: "1.2.3", AgentDir: agents})
	root := e.signIn(t, "root")
	_, body, _ := root.post("/ui/enrollment", url.Values{"name": {"laptops"}})
	m := plainSecret.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, `action="/ui/enrollment/package"`) {
		t.Fatalf("no secret or download form on the new secret's page:\n%s", body)
	}
	secret := m[0]
	form := url.Values{"secret": {secret}, "type": {"deb"}, "arch": {runtime.GOARCH}, "csrf": {root.csrf}}
	resp, err := root.c.PostForm(e.srv.URL+"/ui/enrollment/package", form)
	if err != nil {
		t.Fatal(err)
	}
	deb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := "attachment; filename=bonafide-agent_1.2.3_" + runtime.GOARCH + ".deb"
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Disposition") != want {
		t.Fatalf("download: %s, %q (want %q)\n%.500s", resp.Status, resp.Header.Get("Content-Disposition"), want, deb)
	}
	path := filepath.Join(t.TempDir(), "agent.deb")
	if err := os.WriteFile(path, deb, 0o644); err != nil {
		t.Fatal(err)
	}
	root2 := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", path, root2).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	yaml, err := os.ReadFile(filepath.Join(root2, "etc/bonafide/agent.yaml"))
	if err != nil || !strings.Contains(string(yaml), secret) || !strings.Contains(string(yaml), testCollector) || !strings.Contains(string(yaml), testCAFP) {
		t.Fatalf("the package's agent.yaml (%v):\n%s", err, yaml)
	}

	// A made-up or revoked secret, a missing agent binary, a non-admin.
	for _, tc := range []struct {
		name string
		form url.Values
	}{
		{"forged secret", url.Values{"secret": {"bfe_made_up"}, "type": {"deb"}, "arch": {runtime.GOARCH}}},
		{"no such type", url.Values{"secret": {secret}, "type": {"exe"}, "arch": {runtime.GOARCH}}},
		{"no binary", url.Values{"secret": {secret}, "type": {"msi"}, "arch": {"arm64"}}},
	} {
		if code, body, _ := root.post("/ui/enrollment/package", tc.form); code != http.StatusBadRequest {
			t.Errorf("%s: %d\n%.300s", tc.name, code, body)
		}
	}
	ana := e.signIn(t, "ana")
	if code, _, _ := ana.post("/ui/enrollment/package", url.Values{"secret": {secret}, "type": {"deb"}, "arch": {runtime.GOARCH}}); code != http.StatusForbidden {
		t.Errorf("an analyst downloading a package: %d", code)
	}
}
