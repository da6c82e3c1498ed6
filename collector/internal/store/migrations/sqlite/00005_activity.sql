-- +goose Up
-- Each device's rolling 14-day activity histogram (active and sampled
-- minutes per UTC hour; collector/internal/activity's binary form).
CREATE TABLE device_activity (
    device_id  TEXT PRIMARY KEY REFERENCES devices (id),
    histogram  BLOB NOT NULL
);
-- The same per person (email), over all their devices: each hour as
-- active as the person's most active device in it.
CREATE TABLE person_activity (
    email      TEXT PRIMARY KEY,
    histogram  BLOB NOT NULL
);

-- +goose Down
DROP TABLE person_activity;
DROP TABLE device_activity;
