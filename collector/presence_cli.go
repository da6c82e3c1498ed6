package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/presence"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/collector/internal/store/presencestore"
)

// presenceCmd creates presence-check links from the terminal, through the
// same presence service as the API (POST .../presence-enrolments and
// .../presence-checks), against the collector's database. The link is
// printed alone on stdout, the rest on stderr. The person is notified of a
// check as from the API: through the outputs, which the running collector
// delivers from the audit entry, and on the laptop, at the agent's next
// check-in.
func presenceCmd(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(cmd, stderr)
	var c common
	c.register(fs)
	var cfg presence.Config
	fs.StringVar(&cfg.PublicURL, "public-url", "", "the collector's --public-url (the pages' address; required)")
	fs.DurationVar(&cfg.Expiry, "presence-expiry", presence.DefaultExpiry, "presence check: the collector's --presence-expiry")
	fs.IntVar(&cfg.DailyCap, "presence-daily-cap", presence.DefaultDailyCap, "presence check: the collector's --presence-daily-cap")
	device := fs.String("device", "", "the laptop's device id (needed when the person has several)")
	roaming := fs.Bool("roaming", false, "enrol-link: accept a FIDO2 key instead of the laptop's platform authenticator")
	note := fs.String("note", "", "check: why it is asked (stored with the check, at most 500 bytes)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%s needs the person's e-mail address", cmd)
	}
	if cfg.PublicURL == "" {
		return errors.New("--public-url is required: give the collector's own")
	}
	st, err := c.openStore(ctx, false)
	if err != nil {
		return err
	}
	defer st.Close()
	// No rules: the command only creates links; the running collector
	// judges checks and raises their alerts.
	svc, err := presence.New(st, nil, cfg, newLogger(stderr, ""))
	if err != nil {
		return err
	}
	actor := "cli:" + currentUser()
	switch cmd {
	case "presence enrol-link":
		e, err := svc.CreateEnrolment(ctx, pos[0], *device, *roaming, actor)
		if err != nil {
			return presenceCLIErr(err)
		}
		fmt.Fprintln(stdout, e.Link)
		fmt.Fprintf(stderr, "enrolment link for %s on device %s, valid until %s; open it on that laptop during the onboarding\n",
			e.Person, e.DeviceID, e.ExpiresAt.Format(time.RFC3339))
	case "presence check":
		ch, err := svc.Request(ctx, pos[0], *device, *note, actor)
		if err != nil {
			return presenceCLIErr(err)
		}
		fmt.Fprintln(stdout, ch.Link)
		fmt.Fprintf(stderr, "presence check %s of %s on device %s, to answer before %s\n",
			ch.ID, ch.Person, ch.DeviceID, ch.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

// presenceCLIErr words the refusals as the API does.
func presenceCLIErr(err error) error {
	switch {
	case errors.Is(err, presencestore.ErrCap):
		return fmt.Errorf("refused: %w", err)
	case errors.Is(err, store.ErrNotFound):
		return errors.New("no such person")
	}
	return err
}
