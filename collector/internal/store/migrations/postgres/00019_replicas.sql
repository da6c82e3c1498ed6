-- +goose Up
-- The collector replicas sharing this database, each refreshing its row
-- every sweep interval: its name (host and gRPC address), the settings
-- that must agree across replicas (JSON: intervals, retention, the active
-- rule set's digest and catalog versions), when it started and when it
-- was last seen. A replica warns when a live one's settings differ.
CREATE TABLE replicas (
    name        TEXT PRIMARY KEY,
    settings    TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    seen_at     BIGINT NOT NULL
);

-- +goose Down
DROP TABLE replicas;
