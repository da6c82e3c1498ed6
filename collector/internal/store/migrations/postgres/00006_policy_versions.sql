-- +goose Up
-- Every rule set that became active: its digest, when, how many rules and
-- which (comma-separated ids).
CREATE TABLE policy_versions (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest        TEXT NOT NULL,
    activated_at  BIGINT NOT NULL,
    rules         INTEGER NOT NULL,
    rule_ids      TEXT NOT NULL
);

-- +goose Down
DROP TABLE policy_versions;
