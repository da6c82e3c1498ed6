package main

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/storetest"
)

// TestUserCLI: `user create` takes the password from --password or from a
// line on standard input, refuses short and empty ones with a clear
// message, and `user list` shows the users, on both engines.
func TestUserCLI(t *testing.T) {
	_, collector := binaries(t)
	storetest.Engines(t, func(t *testing.T, dsn string) {
		s := &server{dataDir: t.TempDir(), collector: collector}
		if store.IsPostgres(dsn) {
			s.db = dsn
		}
		// run runs an admin command with stdin, returning stdout, stderr
		// and whether it succeeded.
		run := func(stdin string, args ...string) (string, string, bool) {
			t.Helper()
			args = append(args, "--data-dir", s.dataDir)
			if s.db != "" {
				args = append(args, "--db", s.db)
			}
			cmd := exec.Command(collector, args...)
			cmd.Stdin = strings.NewReader(stdin)
			var out, errOut strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &errOut
			err := cmd.Run()
			if _, ok := err.(*exec.ExitError); err != nil && !ok {
				t.Fatal(err)
			}
			return strings.TrimSpace(out.String()), errOut.String(), err == nil
		}

		if got := s.admin(t, "user", "create", "--username", "Alice", "--role", "admin", "--password", "correct horse battery"); got != "created user alice (role admin)" {
			t.Errorf("user create --password: %q", got)
		}
		out, errOut, ok := run("staple battery horse\n", "user", "create", "--username", "bob", "--role", "viewer")
		if !ok || out != "created user bob (role viewer)" {
			t.Errorf("user create from stdin: ok=%v %q %s", ok, out, errOut)
		}
		out, errOut, ok = run("a windows line\r\n", "user", "create", "--username", "carol", "--role", "analyst")
		if !ok || out != "created user carol (role analyst)" {
			t.Errorf("user create from stdin with CRLF: ok=%v %q %s", ok, out, errOut)
		}

		for _, c := range []struct {
			what, stdin string
			args        []string
			msg         string
		}{
			{"short password", "", []string{"--username", "dave", "--role", "viewer", "--password", "short"}, "password too short: at least 12 characters"},
			{"short password on stdin", "short\n", []string{"--username", "dave", "--role", "viewer"}, "password too short: at least 12 characters"},
			{"empty stdin", "", []string{"--username", "dave", "--role", "viewer"}, "empty password"},
			{"empty line", "\n", []string{"--username", "dave", "--role", "viewer"}, "empty password"},
			{"bad role", "", []string{"--username", "dave", "--role", "root", "--password", "correct horse battery"}, `unknown role "root"`},
			{"duplicate", "", []string{"--username", "ALICE", "--role", "viewer", "--password", "correct horse battery"}, `user "alice" already exists`},
		} {
			out, errOut, ok := run(c.stdin, append([]string{"user", "create"}, c.args...)...)
			if ok || out != "" || !strings.Contains(errOut, c.msg) {
				t.Errorf("%s: ok=%v stdout %q, stderr %q: want a failure saying %q", c.what, ok, out, errOut, c.msg)
			}
		}

		lines := strings.Split(s.admin(t, "user", "list"), "\n")
		want := []string{"alice\tadmin", "bob\tviewer", "carol\tanalyst"}
		if len(lines) != len(want) {
			t.Fatalf("user list: %q, want %q", lines, want)
		}
		for i, l := range lines {
			f := strings.Split(l, "\t")
			if len(f) != 3 || f[0]+"\t"+f[1] != want[i] {
				t.Errorf("user list line %q, want %q<TAB>created", l, want[i])
				continue
			}
			if at, err := time.Parse(time.RFC3339, f[2]); err != nil || time.Since(at) > time.Hour {
				t.Errorf("user list line %q: created %v", l, err)
			}
		}
	})
}
