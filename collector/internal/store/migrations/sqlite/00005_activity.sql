-- +goose Up
-- Each device's rolling 14-day activity histogram (active and sampled
-- minutes per UTC hour; collector/internal/activity's binary form).
CREATE TABLE device_activity (
    device_id  TEXT PRIMARY KEY REFERENCES devices (id),
    histogram  BLOB NOT NULL
);

-- +goose Down
DROP TABLE device_activity;
