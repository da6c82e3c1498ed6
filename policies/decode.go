package policies

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// decodeCatalog decodes a catalog strictly (unknown fields are errors,
// reported as "what: …") into c and checks it with its Validate.
func decodeCatalog(b []byte, what string, c interface{ Validate() error }) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return c.Validate()
}

// catalogVersion is a catalog's version: the SHA-256 of its bytes.
func catalogVersion(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
