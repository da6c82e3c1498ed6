-- +goose Up
-- A device's activity histogram moves onto its row (devices.activity;
-- empty: none yet), as on SQLite, where the separate table cost a page
-- per report: the report rewrites the device's row anyway. On PostgreSQL
-- it saves the upsert's index lookup and its own row version per report.
ALTER TABLE devices ADD COLUMN activity BYTEA NOT NULL DEFAULT ''::bytea;
UPDATE devices d SET activity = a.histogram FROM device_activity a WHERE a.device_id = d.id;
DROP TABLE device_activity;

-- +goose Down
CREATE TABLE device_activity (
    device_id  TEXT PRIMARY KEY REFERENCES devices (id),
    histogram  BYTEA NOT NULL
);
INSERT INTO device_activity (device_id, histogram) SELECT id, activity FROM devices WHERE length(activity) > 0;
ALTER TABLE devices DROP COLUMN activity;
