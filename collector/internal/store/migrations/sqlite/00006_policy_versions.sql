-- +goose Up
-- Every rule set that became active: its digest, when, how many rules and
-- which (comma-separated ids).
CREATE TABLE policy_versions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    digest        TEXT NOT NULL,
    activated_at  BIGINT NOT NULL,
    rules         INTEGER NOT NULL,
    rule_ids      TEXT NOT NULL
);
-- When a resolved alert last re-opened because its rule fired again.
ALTER TABLE alerts ADD COLUMN reopened_at BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE alerts DROP COLUMN reopened_at;
DROP TABLE policy_versions;
