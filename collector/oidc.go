package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/bonafide-sec/bonafide/collector/internal/store/accounts"
	"github.com/bonafide-sec/bonafide/collector/internal/ui"
)

// oidcSecretEnv holds the OIDC client secret when --oidc-client-secret-file
// is not given: neither shows in the process list.
const oidcSecretEnv = "BONAFIDE_OIDC_CLIENT_SECRET"

// oidcFlags are serve's single sign-on flags.
type oidcFlags struct {
	issuer, clientID, secretFile string
	claim, scopes, name          string
	admin, analyst, viewer       listFlag
}

func (o *oidcFlags) register(fset *flag.FlagSet) {
	fset.StringVar(&o.issuer, "oidc-issuer", "", "OpenID Connect issuer URL for single sign-on to the web UI (needs --public-url, --oidc-client-id, the client secret and a group flag)")
	fset.StringVar(&o.clientID, "oidc-client-id", "", "client id of the web UI at the OpenID Connect provider")
	fset.StringVar(&o.secretFile, "oidc-client-secret-file", "", "file holding the OpenID Connect client secret (default: $"+oidcSecretEnv+")")
	fset.StringVar(&o.claim, "oidc-groups-claim", "groups", "ID token claim (a string or list of strings) whose values the --oidc-*-group flags map to roles")
	fset.StringVar(&o.scopes, "oidc-scopes", "openid email profile", "scopes to request, separated by spaces or commas")
	fset.StringVar(&o.name, "oidc-name", "single sign-on", "the provider's name on the sign-in page's button")
	fset.Var(&o.admin, "oidc-admin-group", "value of the groups claim whose members are admins (repeatable)")
	fset.Var(&o.analyst, "oidc-analyst-group", "value of the groups claim whose members are analysts (repeatable)")
	fset.Var(&o.viewer, "oidc-viewer-group", "value of the groups claim whose members are viewers (repeatable)")
}

// config is the UI's OIDC configuration (nil without --oidc-issuer). The
// redirect URL is publicURL (the UI's external base URL) + /ui/oidc/callback.
func (o *oidcFlags) config(publicURL string, getenv func(string) string) (*ui.OIDC, error) {
	if o.issuer == "" {
		return nil, nil
	}
	iss, err := url.Parse(o.issuer)
	if err != nil || iss.Host == "" || !(iss.Scheme == "https" || iss.Scheme == "http" && loopbackHost(iss.Hostname())) {
		return nil, fmt.Errorf("--oidc-issuer %q: want an https:// URL", o.issuer)
	}
	if o.clientID == "" {
		return nil, errors.New("--oidc-issuer needs --oidc-client-id")
	}
	pub, err := url.Parse(publicURL)
	if publicURL == "" || err != nil || pub.Host == "" || pub.Scheme != "https" && pub.Scheme != "http" {
		return nil, errors.New("--oidc-issuer needs --public-url, the web UI's address as users reach it (https://bonafide.example.com): the provider redirects to it")
	}
	secret := getenv(oidcSecretEnv)
	if o.secretFile != "" {
		b, err := os.ReadFile(o.secretFile)
		if err != nil {
			return nil, fmt.Errorf("--oidc-client-secret-file: %w", err)
		}
		secret = string(b)
	}
	secret = strings.TrimSpace(secret)
	if secret == "" {
		return nil, fmt.Errorf("--oidc-issuer needs the client secret: --oidc-client-secret-file FILE or $%s", oidcSecretEnv)
	}
	roles := map[string]string{}
	for _, m := range []struct {
		groups listFlag
		role   string
	}{{o.viewer, accounts.RoleViewer}, {o.analyst, accounts.RoleAnalyst}, {o.admin, accounts.RoleAdmin}} { // highest last: it wins
		for _, g := range m.groups {
			roles[g] = m.role
		}
	}
	if len(roles) == 0 {
		return nil, errors.New("--oidc-issuer needs at least one of --oidc-admin-group, --oidc-analyst-group, --oidc-viewer-group")
	}
	return &ui.OIDC{
		Issuer: o.issuer, ClientID: o.clientID, ClientSecret: secret,
		RedirectURL: strings.TrimSuffix(publicURL, "/") + "/ui/oidc/callback",
		Scopes:      strings.FieldsFunc(o.scopes, func(r rune) bool { return r == ' ' || r == ',' }),
		Claim:       o.claim, Roles: roles, Name: o.name,
	}, nil
}

func loopbackHost(h string) bool {
	ip := net.ParseIP(h)
	return h == "localhost" || ip != nil && ip.IsLoopback()
}
