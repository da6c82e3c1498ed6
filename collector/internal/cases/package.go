package cases

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"embed"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"html/template"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/bonafide-sec/bonafide/collector/internal/store"
)

// The evidence package is a zip archive of:
//
//	report.html         the printable report (self-contained: no script, no outside resource)
//	facts.json          the same facts, machine-readable (Record)
//	VERIFY.txt          how to check the package
//	MANIFEST.sha256     "HEX  NAME" per file above, as sha256sum writes it
//	MANIFEST.sha256.sig the collector's Ed25519 signature of MANIFEST.sha256 (64 bytes)
//	signing-key.pem     the collector's public key (PKIX PEM)
//
// so that, once unpacked, `sha256sum -c MANIFEST.sha256` checks the files
// and `openssl pkeyutl -verify -pubin -inkey signing-key.pem -rawin -in
// MANIFEST.sha256 -sigfile MANIFEST.sha256.sig` the signature; `bonafide-collector
// case verify FILE.zip` does both. The key in the package proves only that
// the package is whole; that it is the collector's is shown by comparing
// its fingerprint with `bonafide-collector case key`.
const (
	ManifestName  = "MANIFEST.sha256"
	SignatureName = "MANIFEST.sha256.sig"
	KeyName       = "signing-key.pem"
	ReportName    = "report.html"
	FactsName     = "facts.json"
	VerifyName    = "VERIFY.txt"
)

//go:embed report.html
var reportFS embed.FS

var reportTmpl = template.Must(template.New("report.html").Funcs(template.FuncMap{
	"utc": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"json": func(v any) string {
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b)
	},
	"pct": func(f float64) string {
		if f < 0 {
			return "unknown"
		}
		return fmt.Sprintf("%.0f%%", 100*f)
	},
	"km": func(f float64) string {
		if f < 0 {
			return "unknown"
		}
		return thousands(f) + " km"
	},
	"heat": func(v, busiest int) int {
		if v <= 0 || busiest <= 0 {
			return 0
		}
		return (4*v + busiest - 1) / busiest
	},
	"busiest": func(h [24]int) int { return slices.Max(h[:]) },
	"hours": func() []int {
		return []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23}
	},
}).ParseFS(reportFS, "report.html"))

// reportData is what the report template gets.
type reportData struct {
	*Record
	Where        template.HTML
	FactsSHA256  string
	KeyPrint     string
	VerifyText   string
	ManifestName string
}

// Fingerprint is the hex SHA-256 of a public key's PKIX (DER) encoding,
// as `openssl pkey -pubin -in signing-key.pem -outform DER | sha256sum`
// prints it.
func Fingerprint(pub ed25519.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// PublicKeyPEM is the public key in PKIX PEM.
func PublicKeyPEM(pub ed25519.PublicKey) []byte {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// verifyText is VERIFY.txt.
func verifyText(keyPrint string) string {
	return `This evidence package was exported by a bonafide collector.

Check that no file was altered since (in the unpacked directory):

  sha256sum -c ` + ManifestName + `
  openssl pkeyutl -verify -pubin -inkey ` + KeyName + ` -rawin -in ` + ManifestName + ` -sigfile ` + SignatureName + `

or, with the collector's program, on the zip file itself:

  bonafide-collector case verify PACKAGE.zip

The signing key's fingerprint (SHA-256 of its DER encoding) is
` + keyPrint + `
Compare it with what the collector prints for "bonafide-collector case key",
or compute it: openssl pkey -pubin -in ` + KeyName + ` -outform DER | sha256sum
`
}

// Report renders the HTML report of a record; factsSHA256 and keyPrint
// go in its integrity section.
func Report(r *Record, factsSHA256, keyPrint string) ([]byte, error) {
	where, err := WhereSVG(r.Where)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := reportTmpl.Execute(&b, reportData{Record: r, Where: where, FactsSHA256: factsSHA256, KeyPrint: keyPrint,
		VerifyText: verifyText(keyPrint), ManifestName: ManifestName}); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Package is an exported evidence package.
type Package struct {
	Zip []byte
	// ManifestSHA256 is the hex SHA-256 of the signed manifest (what the
	// audit log records of the export).
	ManifestSHA256 string
	FactsSHA256    string
}

// Export builds a record's evidence package signed with key.
func Export(r *Record, key ed25519.PrivateKey) (*Package, error) {
	facts, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	facts = append(facts, '\n')
	pub := key.Public().(ed25519.PublicKey)
	keyPrint := Fingerprint(pub)
	fsum := sha256.Sum256(facts)
	report, err := Report(r, hex.EncodeToString(fsum[:]), keyPrint)
	if err != nil {
		return nil, err
	}
	files := []struct {
		name string
		data []byte
	}{{ReportName, report}, {FactsName, facts}, {VerifyName, []byte(verifyText(keyPrint))}}
	var manifest strings.Builder
	for _, f := range files {
		sum := sha256.Sum256(f.data)
		fmt.Fprintf(&manifest, "%s  %s\n", hex.EncodeToString(sum[:]), f.name)
	}
	m := []byte(manifest.String())
	sig := ed25519.Sign(key, m)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range append(files, []struct {
		name string
		data []byte
	}{{ManifestName, m}, {SignatureName, sig}, {KeyName, PublicKeyPEM(pub)}}...) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: r.GeneratedAt})
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	msum := sha256.Sum256(m)
	return &Package{Zip: buf.Bytes(), ManifestSHA256: hex.EncodeToString(msum[:]), FactsSHA256: hex.EncodeToString(fsum[:])}, nil
}

// Limits of what Verify reads.
const (
	maxPackage  = 256 << 20
	maxFile     = 128 << 20
	maxFiles    = 32
	maxManifest = 64 << 10
)

// ErrTampered marks a package whose files, manifest or signature do not
// match.
var ErrTampered = errors.New("the package does not verify")

// Verified is what Verify checked.
type Verified struct {
	Files          []string // the files the manifest lists, each matching
	KeyFingerprint string
}

var manifestLine = regexp.MustCompile(`^([0-9a-f]{64})  ([A-Za-z0-9._-]{1,100})$`)

// Verify checks an evidence package: the manifest's signature by the key
// in the package (which must be trusted, when trusted is not nil), every
// file's SHA-256 against the manifest, and that no file is unlisted. The
// bytes are untrusted; sizes are capped.
func Verify(data []byte, trusted ed25519.PublicKey) (Verified, error) {
	var v Verified
	if len(data) > maxPackage {
		return v, fmt.Errorf("package larger than %d MiB", maxPackage>>20)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return v, fmt.Errorf("not a zip archive: %w", err)
	}
	if len(zr.File) > maxFiles {
		return v, fmt.Errorf("%d files in the package, at most %d", len(zr.File), maxFiles)
	}
	contents := map[string][]byte{}
	total := 0
	for _, f := range zr.File {
		if _, dup := contents[f.Name]; dup {
			return v, fmt.Errorf("%w: %s appears twice", ErrTampered, f.Name)
		}
		rc, err := f.Open()
		if err != nil {
			return v, fmt.Errorf("%s: %w", f.Name, err)
		}
		b, err := io.ReadAll(io.LimitReader(rc, maxFile+1))
		rc.Close()
		if err != nil {
			return v, fmt.Errorf("%s: %w", f.Name, err)
		}
		if len(b) > maxFile {
			return v, fmt.Errorf("%s larger than %d MiB", f.Name, maxFile>>20)
		}
		if total += len(b); total > maxPackage {
			return v, fmt.Errorf("package unpacks to more than %d MiB", maxPackage>>20)
		}
		contents[f.Name] = b
	}
	manifest, sig, keyPEM := contents[ManifestName], contents[SignatureName], contents[KeyName]
	switch {
	case manifest == nil || sig == nil || keyPEM == nil:
		return v, fmt.Errorf("%w: %s, %s and %s are required", ErrTampered, ManifestName, SignatureName, KeyName)
	case len(manifest) > maxManifest:
		return v, fmt.Errorf("%w: manifest too large", ErrTampered)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PUBLIC KEY" {
		return v, fmt.Errorf("%w: %s holds no PEM public key", ErrTampered, KeyName)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	pub, ok := k.(ed25519.PublicKey)
	if err != nil || !ok {
		return v, fmt.Errorf("%w: %s is not an Ed25519 public key", ErrTampered, KeyName)
	}
	v.KeyFingerprint = Fingerprint(pub)
	if trusted != nil && !pub.Equal(trusted) {
		return v, fmt.Errorf("%w: signed by key %s, not by the trusted key %s", ErrTampered, v.KeyFingerprint, Fingerprint(trusted))
	}
	if !ed25519.Verify(pub, manifest, sig) {
		return v, fmt.Errorf("%w: the signature of %s does not match", ErrTampered, ManifestName)
	}
	listed := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSuffix(string(manifest), "\n"), "\n") {
		m := manifestLine.FindStringSubmatch(line)
		if m == nil {
			return v, fmt.Errorf("%w: %s line %d is malformed", ErrTampered, ManifestName, i+1)
		}
		name := m[2]
		if listed[name] {
			return v, fmt.Errorf("%w: %s lists %s twice", ErrTampered, ManifestName, name)
		}
		listed[name] = true
		b, ok := contents[name]
		if !ok {
			return v, fmt.Errorf("%w: %s is missing", ErrTampered, name)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != m[1] {
			return v, fmt.Errorf("%w: %s was altered (SHA-256 %x, the manifest says %s)", ErrTampered, name, sum, m[1])
		}
		v.Files = append(v.Files, name)
	}
	for name := range contents {
		if !listed[name] && name != ManifestName && name != SignatureName && name != KeyName {
			return v, fmt.Errorf("%w: %s is not in the manifest", ErrTampered, name)
		}
	}
	return v, nil
}

// ExportCase builds case id's evidence package, signed with the
// collector's key, and records the export in the audit log.
func ExportCase(ctx context.Context, st *store.Store, id int64, actor string, now time.Time) (*Package, error) {
	rec, err := Build(ctx, st, id, actor, now)
	if err != nil {
		return nil, err
	}
	key, err := st.SigningKey(ctx)
	if err != nil {
		return nil, err
	}
	pkg, err := Export(rec, key)
	if err != nil {
		return nil, err
	}
	return pkg, st.RecordExport(ctx, id, pkg.ManifestSHA256, actor)
}

// FileName is the package's download name.
func FileName(id int64) string { return fmt.Sprintf("bonafide-case-%d-evidence.zip", id) }
