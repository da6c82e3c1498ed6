package main

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/cases"
)

// caseCmd runs `case verify FILE [--key PEM]` (no database needed),
// `case key` (the collector's evidence signing key, PEM on stdout) and
// `case export ID --out FILE`.
func caseCmd(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(cmd, stderr)
	var c common
	c.register(fs)
	keyFile := fs.String("key", "", "case verify: the trusted `PEM` file of the public key (from case key); default: the key in the package")
	out := fs.String("out", "", "case export: the file to write (default bonafide-case-ID-evidence.zip)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if cmd == "case verify" {
		if len(pos) != 1 {
			return errors.New("case verify needs exactly one argument: the package's zip file")
		}
		var trusted ed25519.PublicKey
		if *keyFile != "" {
			if trusted, err = readPublicKey(*keyFile); err != nil {
				return err
			}
		}
		f, err := os.Open(pos[0])
		if err != nil {
			return err
		}
		data, err := io.ReadAll(io.LimitReader(f, 256<<20+1))
		f.Close()
		if err != nil {
			return err
		}
		v, err := cases.Verify(data, trusted)
		if err != nil {
			return fmt.Errorf("%s: %w", pos[0], err)
		}
		fmt.Fprintf(stdout, "%s: verified: %d files match the manifest signed by key %s\n", pos[0], len(v.Files), v.KeyFingerprint)
		if trusted == nil {
			fmt.Fprintln(stdout, "the key is the one in the package: compare its fingerprint with `bonafide-collector case key` on the collector, or pass --key")
		}
		return nil
	}
	st, err := c.openStore(ctx, false)
	if err != nil {
		return err
	}
	defer st.Close()
	switch cmd {
	case "case key":
		key, err := st.SigningKey(ctx)
		if err != nil {
			return err
		}
		pub := key.Public().(ed25519.PublicKey)
		stdout.Write(cases.PublicKeyPEM(pub))
		fmt.Fprintln(stderr, "fingerprint (SHA-256 of the DER key):", cases.Fingerprint(pub))
	case "case export":
		if len(pos) != 1 {
			return errors.New("case export needs exactly one argument: the case id")
		}
		id, err := strconv.ParseInt(pos[0], 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("case id %q: want a positive number", pos[0])
		}
		if err := withPlaces(st); err != nil {
			return err
		}
		pkg, err := cases.ExportCase(ctx, st, id, "cli:"+currentUser(), time.Now())
		if err != nil {
			return err
		}
		name := *out
		if name == "" {
			name = cases.FileName(id)
		}
		if err := os.WriteFile(name, pkg.Zip, 0o600); err != nil {
			return err
		}
		fmt.Fprintln(stdout, name)
	}
	return nil
}

// readPublicKey reads an Ed25519 public key in PKIX PEM.
func readPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%s: no PEM public key", path)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	pub, ok := k.(ed25519.PublicKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 public key", path)
	}
	return pub, nil
}
