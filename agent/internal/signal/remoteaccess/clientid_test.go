package remoteaccess

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/bonafide-sec/bonafide/policies"
	agentv1 "github.com/bonafide-sec/bonafide/proto/bonafide/agent/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"howett.net/plist"
)

func TestValidClientID(t *testing.T) {
	for s, want := range map[string]bool{
		"123456789":             true,
		"my_desk-01":            true,
		strings.Repeat("9", 64): true,
		strings.Repeat("9", 65): false,
		"":                      false,
		"12 34":                 false,
		"id'; DROP":             false,
		"alias@ad":              false,
		"12345\n":               false,
		"ünicode":               false,
		"SECRET=x":              false,
		"00CONSTRUCTEDencid==":  false,
	} {
		if got := validClientID(s); got != want {
			t.Errorf("validClientID(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestParseClientID(t *testing.T) {
	binPlist := func(v any) []byte {
		b, err := plist.Marshal(v, plist.BinaryFormat)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name, format, key string
		in                []byte
		want              string
	}{
		{"anydesk", policies.ClientIDKeyValue, "ad.anynet.id", readTestdata(t, "clientid/anydesk-system.constructed.conf"), "123456789"},
		{"anydesk crlf", policies.ClientIDKeyValue, "ad.anynet.id", readTestdata(t, "clientid/anydesk-system-crlf.constructed.conf"), "987654321"},
		{"anydesk no id", policies.ClientIDKeyValue, "ad.anynet.id", readTestdata(t, "clientid/anydesk-system-noid.constructed.conf"), ""},
		{"anydesk spaces", policies.ClientIDKeyValue, "ad.anynet.id", []byte("  ad.anynet.id = 42 \n"), "42"},
		{"anydesk first wins", policies.ClientIDKeyValue, "ad.anynet.id", []byte("ad.anynet.id=1\nad.anynet.id=2\n"), "1"},
		{"anydesk invalid value", policies.ClientIDKeyValue, "ad.anynet.id", []byte("ad.anynet.id=12 34\n"), ""},
		{"anydesk empty", policies.ClientIDKeyValue, "ad.anynet.id", nil, ""},
		{"teamviewer", policies.ClientIDTeamViewerConf, "ClientID", readTestdata(t, "clientid/teamviewer-global.constructed.conf"), "1234567890"},
		{"teamviewer strng", policies.ClientIDTeamViewerConf, "ClientID", []byte(`[strng] ClientID = "77"` + "\n"), "77"},
		{"teamviewer no brackets", policies.ClientIDTeamViewerConf, "ClientID", []byte("ClientID = 5\n"), ""},
		{"teamviewer only TS user", policies.ClientIDTeamViewerConf, "ClientID", []byte("[int32] ClientIDOfTSUser = 5\n"), ""},
		{"rustdesk", policies.ClientIDTOML, "id", readTestdata(t, "clientid/rustdesk.constructed.toml"), "123456789"},
		{"rustdesk enc_id only", policies.ClientIDTOML, "id", readTestdata(t, "clientid/rustdesk-encid.constructed.toml"), ""},
		{"toml double quotes", policies.ClientIDTOML, "id", []byte(`id = "abc_DEF-1" # comment` + "\n"), "abc_DEF-1"},
		{"toml bare integer", policies.ClientIDTOML, "id", []byte("id = 123 # x\n"), "123"},
		{"toml quoted key", policies.ClientIDTOML, "id", []byte(`"id" = '9'` + "\n"), "9"},
		{"toml unterminated", policies.ClientIDTOML, "id", []byte("id = '123\n"), ""},
		{"toml trailing junk", policies.ClientIDTOML, "id", []byte("id = '1' '2'\n"), ""},
		{"toml multi-line string", policies.ClientIDTOML, "id", []byte("id = '''\n123\n'''\n"), ""},
		{"toml bare word", policies.ClientIDTOML, "id", []byte("id = true\n"), ""},
		{"toml only in table", policies.ClientIDTOML, "id", []byte("[options]\nid = '1'\n"), ""},
		{"plist xml", policies.ClientIDPlist, "ClientID", readTestdata(t, "clientid/teamviewer-preferences.constructed.plist"), "1122334455"},
		{"plist binary", policies.ClientIDPlist, "ClientID", binPlist(map[string]any{"ClientID": 42, "Password": "SECRET"}), "42"},
		{"plist string", policies.ClientIDPlist, "ClientID", binPlist(map[string]any{"ClientID": "abc"}), "abc"},
		{"plist negative", policies.ClientIDPlist, "ClientID", binPlist(map[string]any{"ClientID": -1}), ""},
		{"plist data", policies.ClientIDPlist, "ClientID", binPlist(map[string]any{"ClientID": []byte("1")}), ""},
		{"plist garbage", policies.ClientIDPlist, "ClientID", []byte("bplist00garbage"), ""},
		{"unknown format", "ini", "id", []byte("id=1\n"), ""},
	} {
		if got := parseClientID(tc.in, tc.format, tc.key); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestClientIDNoSecrets reads every fixture with the catalog's own keys and
// checks that the report carries the ID and none of the passwords, salts,
// tokens or keys stored next to it.
func TestClientIDNoSecrets(t *testing.T) {
	for _, tc := range []struct{ file, format, key, want string }{
		{"anydesk-system.constructed.conf", policies.ClientIDKeyValue, "ad.anynet.id", "123456789"},
		{"anydesk-system-noid.constructed.conf", policies.ClientIDKeyValue, "ad.anynet.id", ""},
		{"teamviewer-global.constructed.conf", policies.ClientIDTeamViewerConf, "ClientID", "1234567890"},
		{"rustdesk.constructed.toml", policies.ClientIDTOML, "id", "123456789"},
		{"rustdesk-encid.constructed.toml", policies.ClientIDTOML, "id", ""},
		{"teamviewer-preferences.constructed.plist", policies.ClientIDPlist, "ClientID", "1122334455"},
	} {
		b := readTestdata(t, "clientid/"+tc.file)
		if !strings.Contains(string(b), "SECRET") {
			t.Fatalf("%s: fixture has no SECRET line to guard", tc.file)
		}
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, "conf"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		cat := &policies.RemoteAccessCatalog{Tools: []policies.Tool{{ID: "tool", Linux: policies.OSMatch{
			ClientID: []policies.ClientIDSpec{{File: "/conf", Format: tc.format, Key: tc.key}},
		}}}}
		ra := &agentv1.RemoteAccess{Tools: []*agentv1.RemoteTool{{ToolId: "tool"}}}
		setClientIDs(ra, cat, clientIDReader{goos: "linux", root: root, live: false})
		if got := ra.Tools[0].GetClientId(); got != tc.want {
			t.Errorf("%s: client_id %q, want %q", tc.file, got, tc.want)
		}
		out, err := prototext.Marshal(ra)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"SECRET", "PRIVATE", "encid", "example.com", "U0VDUkVU"} {
			if strings.Contains(string(out), secret) {
				t.Errorf("%s: report holds %q: %s", tc.file, secret, out)
			}
		}
	}
}

func TestClientIDLocate(t *testing.T) {
	env := map[string]string{"ProgramData": `D:\PD`, "SystemRoot": `D:\Win\`, "SystemDrive": "D:"}
	live := clientIDReader{goos: "windows", root: "/", live: true, getenv: func(k string) string { return env[k] }}
	image := clientIDReader{goos: "windows", root: "/mnt/img", live: false}
	lin := clientIDReader{goos: "linux", root: "/mnt/root"}
	for _, tc := range []struct {
		r                  clientIDReader
		file, dir, pattern string
		ok                 bool
	}{
		{live, `%ProgramData%\AnyDesk\system.conf`, `D:\PD\`, "AnyDesk/system.conf", true},
		{live, `%ProgramData%\AnyDesk\*\system.conf`, `D:\PD\`, "AnyDesk/*/system.conf", true},
		{live, `%SystemRoot%\ServiceProfiles\x.toml`, `D:\Win\`, "ServiceProfiles/x.toml", true},
		{live, `%SystemDrive%\Users\*\a.toml`, `D:\`, "Users/*/a.toml", true},
		{clientIDReader{goos: "windows", live: true}, `%SystemDrive%\Users\a`, `C:\`, "Users/a", true},
		{image, `%ProgramData%\AnyDesk\system.conf`, filepath.Join("/mnt/img", "ProgramData"), "AnyDesk/system.conf", true},
		{image, `%SystemDrive%\Users\a`, filepath.FromSlash("/mnt/img"), "Users/a", true},
		{live, `C:\AnyDesk\system.conf`, "", "", false},
		{live, `%ProgramData%\..\x`, "", "", false},
		{live, `%ProgramData%\`, "", "", false},
		{lin, "/etc/anydesk/system.conf", "/mnt/root", "etc/anydesk/system.conf", true},
		{lin, "etc/anydesk/system.conf", "", "", false},
		{lin, "/etc/../x", "", "", false},
		{lin, "/", "", "", false},
	} {
		dir, pattern, ok := tc.r.locate(tc.file)
		if dir != tc.dir || pattern != tc.pattern || ok != tc.ok {
			t.Errorf("%s %q: got %q %q %v, want %q %q %v", tc.r.goos, tc.file, dir, pattern, ok, tc.dir, tc.pattern, tc.ok)
		}
	}
}

func TestReadClientIDFile(t *testing.T) {
	fsys := fstest.MapFS{
		"home/a/.config/rustdesk/RustDesk.toml": {Data: []byte("enc_id = 'x'\n")},
		"home/b/.config/rustdesk/RustDesk.toml": {Data: []byte("id = '222'\n")},
		"home/c/.config/rustdesk/RustDesk.toml": {Data: []byte("id = '333'\n")},
		"fifo/RustDesk.toml":                    {Mode: os.ModeNamedPipe},
		"link/RustDesk.toml":                    {Mode: fs.ModeSymlink, Data: []byte("../home/b/.config/rustdesk/RustDesk.toml")},
		"dir/RustDesk.toml/x":                   {Data: []byte("id = '1'\n")},
		"big/RustDesk.toml":                     {Data: []byte("id = '1'\n" + strings.Repeat("#", clientIDMaxFile))},
	}
	for pattern, want := range map[string]string{
		"home/*/.config/rustdesk/RustDesk.toml": "222", // sorted: a has no id, b is first
		"home/c/.config/rustdesk/RustDesk.toml": "333",
		"fifo/RustDesk.toml":                    "",
		"link/RustDesk.toml":                    "",
		"dir/RustDesk.toml":                     "",
		"big/RustDesk.toml":                     "",
		"missing/RustDesk.toml":                 "",
		"[":                                     "",
	} {
		if got := readClientIDFile(fsys, pattern, policies.ClientIDTOML, "id"); got != want {
			t.Errorf("%s: got %q, want %q", pattern, got, want)
		}
	}
}

func TestSetClientIDs(t *testing.T) {
	root := t.TempDir()
	write := func(name, data string) {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("first.conf", "ad.anynet.id=not valid\n")
	write("second.conf", "ad.anynet.id=111\n")
	write("other.conf", "ad.anynet.id=999\n")
	spec := func(f string) policies.ClientIDSpec {
		return policies.ClientIDSpec{File: f, Format: policies.ClientIDKeyValue, Key: "ad.anynet.id"}
	}
	cat := &policies.RemoteAccessCatalog{Tools: []policies.Tool{
		{ID: "a", Linux: policies.OSMatch{ClientID: []policies.ClientIDSpec{spec("/missing.conf"), spec("/first.conf"), spec("/second.conf")}}},
		{ID: "notfound", Linux: policies.OSMatch{ClientID: []policies.ClientIDSpec{spec("/other.conf")}}},
		{ID: "win", Windows: policies.OSMatch{ClientID: []policies.ClientIDSpec{{Registry: `HKLM\SOFTWARE\X`, Value: "ClientID"}}}},
	}}
	ra := &agentv1.RemoteAccess{Tools: []*agentv1.RemoteTool{{ToolId: "a"}, {ToolId: "win"}}}
	setClientIDs(ra, cat, clientIDReader{goos: "linux", root: root})
	if got := ra.Tools[0].ClientId; got != "111" {
		t.Errorf("a: %q", got)
	}
	if got := ra.Tools[1].ClientId; got != "" {
		t.Errorf("win on linux: %q", got)
	}

	reg := map[string]string{`HKLM\SOFTWARE\X|ClientID`: "1234567890", `HKLM\SOFTWARE\Y|ClientID`: "bad value"}
	r := clientIDReader{goos: "windows", live: true, registry: func(k, v string) string { return reg[k+"|"+v] }}
	ra = &agentv1.RemoteAccess{Tools: []*agentv1.RemoteTool{{ToolId: "win"}}}
	setClientIDs(ra, cat, r)
	if got := ra.Tools[0].ClientId; got != "1234567890" {
		t.Errorf("win: %q", got)
	}
	cat.Tools[2].Windows.ClientID[0].Registry = `HKLM\SOFTWARE\Y`
	ra = &agentv1.RemoteAccess{Tools: []*agentv1.RemoteTool{{ToolId: "win"}}}
	setClientIDs(ra, cat, r)
	if got := ra.Tools[0].ClientId; got != "" {
		t.Errorf("invalid registry value reported: %q", got)
	}
	setClientIDs(nil, cat, r) // nil-safe
	setClientIDs(ra, nil, r)
}

// TestCatalogClientIDs checks the embedded catalog's client_id entries:
// the tools the feature is for have them on every OS, and each one can be
// placed by the reader.
func TestCatalogClientIDs(t *testing.T) {
	cat, err := policies.RemoteAccess(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"anydesk": true, "teamviewer": true, "rustdesk": true}
	for i := range cat.Tools {
		tool := &cat.Tools[i]
		for _, goos := range []string{"windows", "darwin", "linux"} {
			m, _ := osMatchFor(tool, goos)
			if want[tool.ID] && len(m.ClientID) == 0 {
				t.Errorf("%s: no client_id on %s", tool.ID, goos)
			}
			r := clientIDReader{goos: goos, root: "/", live: true}
			for _, s := range m.ClientID {
				if s.File == "" {
					continue
				}
				if _, _, ok := r.locate(s.File); !ok {
					t.Errorf("%s %s: cannot place %q", tool.ID, goos, s.File)
				}
			}
		}
	}
}
