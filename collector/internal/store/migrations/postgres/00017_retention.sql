-- +goose Up
-- Reports older than their retention (serve --retain-reports) are kept as
-- one row per device and UTC day: how many snapshots and heartbeats came
-- (collector/internal/store.Prune). Pruning walks reports by age.
CREATE TABLE report_days (
    device_id   TEXT NOT NULL,
    day         BIGINT NOT NULL,
    snapshots   BIGINT NOT NULL DEFAULT 0,
    heartbeats  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, day)
);
CREATE INDEX reports_received ON reports (received_at);

-- +goose Down
DROP INDEX reports_received;
DROP TABLE report_days;
