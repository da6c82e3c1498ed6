-- +goose Up
-- Findings an analyst decided not to be alerted about, by rule, device,
-- person and/or egress network (all given fields must match), with a
-- reason and an expiry.
CREATE TABLE suppressions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id     TEXT NOT NULL DEFAULT '',
    device_id   TEXT NOT NULL DEFAULT '',
    person      TEXT NOT NULL DEFAULT '',
    network     TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX suppressions_expires ON suppressions (expires_at);

-- +goose Down
DROP TABLE suppressions;
