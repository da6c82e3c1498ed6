package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
)

// admin runs the commands that change the collector's data directly in its
// database (or read its CA). stdin is read by `user create` without
// --password.
func admin(ctx context.Context, cmd string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet(cmd, stderr)
	var c common
	c.register(fs)
	name := fs.String("name", "", "a label for the secret or token")
	role := fs.String("role", "", "token or user role: admin, analyst or viewer")
	username := fs.String("username", "", "user create: the user's name (1-64 of a-z, 0-9, '.', '_', '@', '-')")
	password := fs.String("password", "", "user create, user password: the password (12 characters to 72 bytes); default: one line read from standard input")
	expires := fs.Duration("expires", 0, "token create, secret create: it stops working after this long (e.g. 720h; 0: never)")
	maxUses := fs.Int64("max-uses", 0, "secret create: enroll at most this many agents with the secret (0: any number)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	arg := func() (string, error) {
		if len(pos) != 1 {
			return "", fmt.Errorf("%s needs exactly one argument", cmd)
		}
		return pos[0], nil
	}
	if cmd == "ca fingerprint" {
		fp, err := caFingerprint(ctx, c)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, fp)
		return nil
	}
	// Only the commands that add something may start a database.
	st, err := c.openStore(ctx, slices.Contains([]string{"secret create", "token create", "user create", "people import"}, cmd))
	if err != nil {
		return err
	}
	defer st.Close()
	acc := accounts.New(st)
	if err := withPlaces(st); err != nil {
		return err
	}
	switch cmd {
	case "secret create":
		var until time.Time
		if *expires > 0 {
			until = time.Now().Add(*expires)
		}
		plain, _, err := st.CreateSecretLimited(ctx, *name, *maxUses, until)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, plain)
	case "secret list":
		secrets, err := st.ListSecrets(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED\tUSES\tMAX USES\tEXPIRES\tSTATUS")
		for _, s := range secrets {
			limit := "-"
			if s.MaxUses > 0 {
				limit = fmt.Sprint(s.MaxUses)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", s.ID, s.Name, s.CreatedAt.Format(time.RFC3339), s.Uses, limit,
				timeOr(s.ExpiresAt, "never"), s.State(time.Now()))
		}
		return tw.Flush()
	case "secret revoke":
		id, err := arg()
		if err != nil {
			return err
		}
		if err := st.RevokeSecret(ctx, id); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "revoked secret", id)
	case "token create":
		var until time.Time
		if *expires > 0 {
			until = time.Now().Add(*expires)
		}
		plain, _, err := acc.CreateTokenExpiring(ctx, *name, *role, until, "cli:"+currentUser())
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, plain)
	case "token list":
		tokens, err := acc.ListTokens(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tEXPIRES\tLAST USED\tSTATUS")
		for _, t := range tokens {
			state := "active"
			switch {
			case !t.RevokedAt.IsZero():
				state = "revoked " + t.RevokedAt.Format(time.RFC3339)
			case !t.ExpiresAt.IsZero() && t.ExpiresAt.Before(time.Now()):
				state = "expired"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, t.CreatedAt.Format(time.RFC3339),
				timeOr(t.ExpiresAt, "never"), timeOr(t.LastUsedAt, "-"), state)
		}
		return tw.Flush()
	case "token revoke":
		id, err := arg()
		if err != nil {
			return err
		}
		if err := acc.RevokeToken(ctx, id, "cli:"+currentUser()); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "revoked token", id)
	case "user disable", "user enable", "user role", "user password":
		u, err := arg()
		if err != nil {
			return err
		}
		var c accounts.UserChange
		switch cmd {
		case "user disable", "user enable":
			off := cmd == "user disable"
			c.Disabled = &off
		case "user role":
			c.Role = role
		case "user password":
			pw := *password
			if !flagSet(fs, "password") {
				if pw, err = readLine(stdin); err != nil {
					return fmt.Errorf("read the password from standard input: %w", err)
				}
			}
			c.Password = &pw
		}
		if _, err := acc.UpdateUser(ctx, u, c, "cli:"+currentUser()); err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		fmt.Fprintf(stderr, "%s: done for %s\n", cmd, u)
	case "user create":
		pw := *password
		if !flagSet(fs, "password") {
			if f, ok := stdin.(*os.File); ok {
				if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
					fmt.Fprint(stderr, "password (it will be echoed): ")
				}
			}
			if pw, err = readLine(stdin); err != nil {
				return fmt.Errorf("read the password from standard input: %w", err)
			}
		}
		if pw == "" {
			return errors.New("user create: empty password (give --password or one line on standard input)")
		}
		u, err := acc.CreateUser(ctx, *username, *role, pw, "cli:"+currentUser())
		if err != nil {
			return fmt.Errorf("user create: %w", err)
		}
		fmt.Fprintf(stdout, "created user %s (role %s)\n", u.Username, u.Role)
	case "user list":
		users, err := acc.ListUsers(ctx)
		if err != nil {
			return err
		}
		for _, u := range users {
			fmt.Fprintf(stdout, "%s\t%s\t%s\n", u.Username, u.Role, u.CreatedAt.Format(time.RFC3339))
		}
	case "people import":
		name, err := arg()
		if err != nil {
			return err
		}
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		n, rowErrs, err := st.ImportPeople(ctx, f, "cli:"+currentUser())
		for _, re := range rowErrs {
			fmt.Fprintf(stderr, "%s:%d: %s\n", name, re.Line, re.Err)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "imported %d people, %d rows refused\n", n, len(rowErrs))
		if len(rowErrs) > 0 {
			return fmt.Errorf("%d rows refused", len(rowErrs))
		}
	case "device revoke":
		id, err := arg()
		if err != nil {
			return err
		}
		if err := st.RevokeDevice(ctx, id, "cli:"+currentUser()); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "revoked device", id)
	case "device approve-claim":
		id, err := arg()
		if err != nil {
			return err
		}
		if err := st.ApproveClaim(ctx, id, "cli:"+currentUser()); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "merged device", id, "into the device whose hardware it claimed")
	case "device readmit":
		id, err := arg()
		if err != nil {
			return err
		}
		if err := st.Readmit(ctx, id, "cli:"+currentUser()); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "the hardware of revoked device", id, "may enroll again")
	}
	return nil
}

// parseInterspersed parses flags that may come before or after the
// positional arguments (`device revoke ID --data-dir X`) and returns the
// positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// readLine reads one line from r without its line ending; a last line
// without a newline counts.
func readLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

// policyCmd type-checks a policy directory (its rules, and the catalogs and
// declared offices the collector would load with them) or runs its rules'
// test cases.
func policyCmd(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	flags := newFlagSet(cmd, stderr)
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() != 1 {
		return fmt.Errorf("%s needs the policy directory", cmd)
	}
	fsys, err := policyDir(flags.Arg(0))
	if err != nil {
		return err
	}
	eng, err := detect.Load(fsys)
	if cmd == "policy check" {
		cats, cerr := loadCatalogs(fsys)
		if err := errors.Join(err, cerr); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d rules OK (digest %s)\n", len(eng.Rules()), eng.Digest())
		offices := 0
		if cats.Networks != nil {
			offices = len(cats.Networks.Offices)
		}
		fmt.Fprintf(stdout, "catalogs OK (%d KVM families, %d declared offices)\n", len(cats.KVM.Families), offices)
		return nil
	}
	if err != nil {
		return err
	}
	failed := 0
	results := eng.Test(ctx)
	for _, r := range results {
		if r.Err != nil {
			failed++
			fmt.Fprintf(stdout, "FAIL %s:%d %s/%s: %v\n", r.File, r.Line, r.RuleID, r.Name, r.Err)
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", len(results)-failed, failed)
	if failed > 0 {
		return errors.New("policy tests failed")
	}
	return nil
}

// timeOr formats t, or says none when it is zero.
func timeOr(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.Format(time.RFC3339)
}
