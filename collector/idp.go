package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/detect"
	"github.com/bonafide-sec/bonafide/collector/internal/gazetteer"
	"github.com/bonafide-sec/bonafide/collector/internal/geo"
	"github.com/bonafide-sec/bonafide/collector/internal/idp"
	"github.com/bonafide-sec/bonafide/collector/internal/ingest"
	"github.com/bonafide-sec/bonafide/collector/internal/store"
	"github.com/bonafide-sec/bonafide/policies"
)

// idpImport imports a provider's sign-in document: every good record is
// stored (again-imported ones are recognised by their event id), each bad
// one reported on stderr, and the people concerned judged again.
func idpImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := newFlagSet("idp import", stderr)
	var c common
	c.register(flags)
	format := flags.String("format", "", "the document's provider: okta (System Log LogEvent array), entra (Graph signIns response) or google (Reports login activities response)")
	var geoip listFlag
	flags.Var(&geoip, "geoip", "GeoIP database the sign-in addresses are located with, as serve's --geoip; repeatable")
	policyDirFlag := flags.String("policies", "", "policy directory (networks catalog and rules; default: the embedded policies)")
	pos, err := parseInterspersed(flags, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("idp import needs exactly one FILE")
	}
	name := pos[0]
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	parsed, err := idp.Parse(*format, f)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for _, re := range parsed.Errors {
		fmt.Fprintf(stderr, "%s: %s\n", name, re)
	}

	var policyFS fs.FS = policies.FS()
	if *policyDirFlag != "" {
		if policyFS, err = policyDir(*policyDirFlag); err != nil {
			return err
		}
	}
	rules, err := detect.Load(policyFS)
	if err != nil {
		return fmt.Errorf("policies: %w", err)
	}
	networks, err := networksCatalog(policyFS)
	if err != nil {
		return fmt.Errorf("policies: %w", err)
	}
	log := newLogger(io.Discard, "")
	loc, err := locator(networks, geoip, log)
	if err != nil {
		return err
	}
	if loc.GeoIP != nil {
		defer loc.GeoIP.Close()
	}
	g, err := gazetteer.Default()
	if err != nil {
		return fmt.Errorf("gazetteer: %w", err)
	}
	(&idp.Enricher{Locator: func() *ingest.Locator { return loc }, CountryCode: g.CountryCode}).Enrich(parsed.Signins)

	st, err := store.Open(ctx, c.dsn(), log)
	if err != nil {
		return err
	}
	defer st.Close()
	now := time.Now()
	live := detect.NewLive(rules, now)
	if _, err := st.SyncRuleOverrides(ctx, live); err != nil {
		return err
	}
	res, err := st.AddSignins(ctx, parsed.Signins, live, now)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "imported %d sign-ins (%d already stored, %d other events skipped), %d records refused; %d known people judged again\n",
		res.Added, res.Duplicate, parsed.Skipped, len(parsed.Errors), len(res.People))
	if len(parsed.Errors) > 0 {
		return fmt.Errorf("%d records refused", len(parsed.Errors))
	}
	return nil
}

// idpPullers builds the connectors of serve --idp (none without a file).
// Their sign-in addresses are located like laptop egress: the same GeoIP
// databases, and the networks catalog the ingest server holds now.
func idpPullers(ctx context.Context, file string, st *store.Store, svc *ingest.Server, geoDB *geo.DB, live *detect.Live, log *slog.Logger) ([]*idp.Puller, error) {
	if file == "" {
		return nil, nil
	}
	conns, err := idp.LoadConfig(file, os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}
	g, err := gazetteer.Default()
	if err != nil {
		return nil, fmt.Errorf("gazetteer: %w", err)
	}
	enr := &idp.Enricher{CountryCode: g.CountryCode, Locator: func() *ingest.Locator {
		cats, _ := svc.Catalogs()
		return &ingest.Locator{GeoIP: geoDB, Networks: cats.Networks}
	}}
	var out []*idp.Puller
	for _, c := range conns {
		p, err := idp.NewPuller(ctx, c, st, enr, live, log)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
		log.Info("idp connector", "name", c.Name, "provider", c.Provider, "every", c.PollInterval)
	}
	return out, nil
}
