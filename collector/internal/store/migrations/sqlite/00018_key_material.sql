-- +goose Up
-- Key material every replica of a deployment shares (PostgreSQL; a SQLite
-- collector keeps its CA in its data dir): the CA ("ca") and the gRPC
-- server certificate ("server"). cert_pem is the certificate (chain, PEM);
-- sealed_key its private key encrypted with the database key each replica
-- is given (collector/internal/ca.Sealer: AES-256-GCM, the row's name as
-- associated data). Rows are added once (the first replica to start wins)
-- and replaced only by compare-and-swap on cert_pem.
CREATE TABLE key_material (
    name        TEXT PRIMARY KEY,
    cert_pem    TEXT NOT NULL,
    sealed_key  BLOB NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- +goose Down
DROP TABLE key_material;
