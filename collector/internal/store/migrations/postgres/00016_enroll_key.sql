-- +goose Up
-- Enrollment is idempotent by the key the agent asks a certificate for:
-- enroll_key is the hex SHA-256 of its public key (SubjectPublicKeyInfo),
-- enroll_cert the certificate issued, so that a retried Enroll with the
-- same key gets the agent it created back (collector/internal/store.EnrollAgent).
ALTER TABLE agents ADD COLUMN enroll_key TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN enroll_cert BYTEA;
CREATE UNIQUE INDEX agents_enroll_key ON agents (enroll_key) WHERE enroll_key <> '';

-- +goose Down
DROP INDEX agents_enroll_key;
ALTER TABLE agents DROP COLUMN enroll_cert;
ALTER TABLE agents DROP COLUMN enroll_key;
