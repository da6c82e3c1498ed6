// Command bonafide-collector enrolls agents, stores their reports, evaluates
// detection policies and serves the API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// version is stamped by the Makefile from git.
var version = "dev"

const usage = `usage: bonafide-collector <command> [flags]

commands:
  serve                         run the collector (gRPC for agents, HTTP API)
  secret create [--name N]      create an enrollment secret (printed alone on stdout)
  secret list                   list enrollment secrets
  secret revoke ID              revoke an enrollment secret
  token create --role R [--name N]
                                create an API token (admin, analyst or viewer)
  user create --username U --role R [--password P]
                                create a web UI user (admin, analyst or viewer); without
                                --password, the password is read as one line from stdin
  user list                     list web UI users (username, role, created; tab-separated)
  user disable|enable U         stop or restore a user's sign-in (their sessions end)
  user role U --role R          change a user's role
  user password U [--password P]
                                set a user's password (without --password, read from stdin)
  token list                    list API tokens (never their secret): role, expiry, last use
  token revoke ID               stop an API token at once
  (token create takes --expires DURATION: the token stops working after it)
  ca fingerprint                print the CA certificate's SHA-256 (hex)
  device revoke ID              cut a device off
  case verify FILE.zip [--key PEM]
                                check a case's evidence package: files, manifest, signature
  case key                      print the key that signs evidence packages (PEM on stdout)
  case export ID [--out FILE]   write a case's evidence package (path printed on stdout)
  device approve-claim ID       merge a device that enrolled claiming another active
                                device's hardware into that device (a reinstall)
  device readmit ID             let a revoked device's hardware enroll again (as a new device)
  people import FILE.csv        import people from the HR export (bad rows are reported, good rows kept)
  idp import --format okta|entra|google FILE
                                import identity-provider sign-ins from the provider's own API
                                response (bad records are reported, good ones kept, repeats
                                recognised by event id)
  presence enrol-link EMAIL [--device ID] [--roaming] --public-url URL
                                create a one-time presence enrolment link (printed alone on
                                stdout) for the person's laptop, as the API does
  presence check EMAIL [--device ID] [--note TEXT] --public-url URL
                                ask the person for a presence check; its one-time link is
                                printed alone on stdout (give serve's --presence-expiry and
                                --presence-daily-cap when not the defaults)
  policy check DIR              type-check the rules, catalogs and offices in DIR
  policy test DIR               run the rules' own test cases in DIR
  package --type msi|pkg|deb|rpm [--collector H:P --secret S] [--arch A]
                                build an agent installer, pre-configured when given a
                                collector and secret (path printed on stdout)
  version                       print the version (also --version)
  help [COMMAND]                this help, or a command's flags

Every command takes --data-dir DIR (default ./bonafide-data) and
--db postgres://... (default: SQLite in the data dir). Run a command with -h
for its flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bonafide-collector:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	cmd, rest := args[0], args[1:]
	if sub := subcommand(cmd, rest); sub != "" {
		cmd, rest = cmd+" "+sub, rest[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, rest, stderr)
	case "secret create", "secret list", "secret revoke", "token create", "ca fingerprint", "device revoke", "people import",
		"device approve-claim", "device readmit", "token list", "token revoke", "user disable", "user enable", "user role", "user password",
		"user create", "user list":
		return admin(ctx, cmd, rest, os.Stdin, stdout, stderr)
	case "package":
		return packageCmd(ctx, rest, stdout, stderr)
	case "idp import":
		return idpImport(ctx, rest, stdout, stderr)
	case "case verify", "case key", "case export":
		return caseCmd(ctx, cmd, rest, stdout, stderr)
	case "policy check", "policy test":
		return policyCmd(ctx, cmd, rest, stdout, stderr)
	case "presence enrol-link", "presence check":
		return presenceCmd(ctx, cmd, rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, version)
		return nil
	case "help", "-h", "--help":
		if len(rest) > 0 { // help COMMAND: the command's -h, on stdout
			if err := run(ctx, append(rest, "-h"), stdout, stdout); !errors.Is(err, flag.ErrHelp) {
				return err
			}
			return nil
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

func subcommand(cmd string, rest []string) string {
	switch cmd {
	case "secret", "token", "ca", "device", "policy", "people", "user", "idp", "case", "presence":
		if len(rest) > 0 {
			return rest[0]
		}
	}
	return ""
}

// common holds the flags every command shares.
type common struct {
	dataDir string
	db      string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.dataDir, "data-dir", "./bonafide-data", "data directory: SQLite database, CA, first-run credentials")
	fs.StringVar(&c.db, "db", "", "PostgreSQL URL (postgres://...); default: SQLite in the data dir")
}

// dsn is the database to open.
func (c *common) dsn() string {
	if c.db != "" {
		return c.db
	}
	return filepath.Join(c.dataDir, "bonafide.db")
}

// openStore opens the collector's database for a command. Opening a
// SQLite database that is not there creates it, data dir and all: only
// with create may a command start one; otherwise a missing one is an error.
func (c *common) openStore(ctx context.Context, create bool) (*store.Store, error) {
	if _, err := os.Stat(c.dsn()); !create && c.db == "" && errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no collector database: %s does not exist (give the --data-dir or --db that `serve` uses)", c.dsn())
	}
	return store.Open(ctx, c.dsn(), newLogger(io.Discard, ""))
}

// newFlagSet is the flag set of command cmd. Its -h says what the command
// does (its entry in usage) before listing the flags.
func newFlagSet(cmd string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		synopsis, what := commandHelp(cmd)
		fmt.Fprintf(stderr, "usage: bonafide-collector %s\n\n%s\n", synopsis, what)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(stderr, "\nflags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// commandHelp is the synopsis and the description of cmd in usage.
func commandHelp(cmd string) (synopsis, what string) {
	lines := strings.Split(usage, "\n")
	for i, l := range lines {
		if l != "  "+cmd && !strings.HasPrefix(l, "  "+cmd+" ") {
			continue
		}
		synopsis, what, _ = strings.Cut(strings.TrimSpace(l), "  ")
		for _, more := range lines[i+1:] {
			if !strings.HasPrefix(more, "    ") {
				break
			}
			what += " " + strings.TrimSpace(more)
		}
		return synopsis, strings.TrimSpace(what)
	}
	return cmd, ""
}

func newLogger(w io.Writer, format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}
