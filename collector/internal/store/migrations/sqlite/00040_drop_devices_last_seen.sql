-- +goose Up
-- Every report updates a device's last_seen, and so every index on it.
-- devices_last_seen (last_seen) is a prefix of devices_last_seen_id
-- (last_seen, id), which serves every query it served (the liveness
-- windows, last_seen > ?, and the device list by last report).
DROP INDEX devices_last_seen;

-- +goose Down
CREATE INDEX devices_last_seen ON devices (last_seen);
