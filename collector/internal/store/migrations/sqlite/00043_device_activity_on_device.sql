-- +goose Up
-- A device's activity histogram moves onto its row (devices.activity;
-- empty: none yet). Every report that carries activity hours rewrote the
-- histogram in device_activity, a b-tree page of its own per report in
-- the commit's WAL frames (about one page in ten a quiet snapshot
-- wrote), while the report rewrites the device's row anyway: on that row
-- the histogram costs no page more.
ALTER TABLE devices ADD COLUMN activity BLOB NOT NULL DEFAULT X'';
UPDATE devices SET activity = (SELECT a.histogram FROM device_activity a WHERE a.device_id = devices.id)
    WHERE id IN (SELECT device_id FROM device_activity);
DROP TABLE device_activity;

-- +goose Down
CREATE TABLE device_activity (
    device_id  TEXT PRIMARY KEY REFERENCES devices (id),
    histogram  BLOB NOT NULL
);
INSERT INTO device_activity (device_id, histogram) SELECT id, activity FROM devices WHERE length(activity) > 0;
ALTER TABLE devices DROP COLUMN activity;
